// Package relay is the SMTP engine: the server session (go-smtp) with its
// checks in order — connection limits, the relay guard at MAIL and RCPT,
// the receive-time rewrite and a second guard check on its result, the
// bare line-ending policy, the hop count — then the durable queue, and the
// runner that routes, rewrites for delivery, delivers, retries and
// bounces. Its subpackages own the pieces: guard (policy), auth (SASL),
// queue (spool), delivery (SMTP client), dsn (bounces).
package relay
