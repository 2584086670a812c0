// Package console is the web console `sekisho serve` runs beside the SMTP
// listeners (net/http and html/template, every asset embedded: LGWAN
// terminals reach no internet): staff see the sanitized mail addressed to
// them and ask for originals; approvers decide; administrators see the
// dashboard, the queue, the quarantine, the message trace, the dry runs
// and the effective configuration.
//
// It is a client of the running engine (relay/gateway), as the command
// line is: queue changes go through queue.Spool.Do, releases through
// relay/approval and the quarantine's one release path, dry runs through
// gateway.DryRunner, sign-ins through relay/auth under the SMTP AUTH
// lockout. Its records are in relay/store.
//
// Security: pages work without JavaScript and serve none (a
// Content-Security-Policy without script, frames denied); sessions are
// server-side (the cookie carries a random token, signed, HttpOnly,
// Secure, SameSite=Strict; the store keeps its hash, its expiry and its
// revocation); every POST carries the session's CSRF token. Everything a
// message brought (subjects, names, addresses, file names, text) is
// rendered as text by html/template, with bidirectional and other
// control characters shown as visible codes; it is never put into a URL.
// Every sign-in, view of an original, request, decision, release and
// queue change is a kind=audit log line and a stored record.
package console
