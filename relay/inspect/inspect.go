// Package inspect owns content inspection around the queue: the connect
// checks (DNS block/allow lists, reverse DNS), the after-DATA checks
// (SPF, DKIM, DMARC into one Authentication-Results, then the milters) and
// DKIM signing at delivery. Its configuration is relay.inspect; the
// stages themselves live beneath it (msgauth, milter, dkimsign) and this
// package joins them into what the session and the runner call.
package inspect

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/accounts/keyerr"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/msgauth"
)

// Inspector bundles the content stages of relay.inspect: the connect
// checks, the after-DATA checks (sender authentication, then milters) and
// DKIM signing at delivery. It is safe for concurrent use; build one per
// configuration (reload) and keep it with the rest of the snapshot. A nil
// Inspector inspects nothing and signs nothing.
type Inspector struct {
	milters *milter.Client
	auth    *msgauth.Verifier
	signer  *dkimsign.Signer
	cfg     Config // which sources the milters take; whether any key signs
}

// New builds the stages of a validated configuration; it reads the DKIM
// key files. r nil means the resolver of inspect.auth.dns_servers.
func New(cfg Config, hostname string, r msgauth.Resolver) (*Inspector, error) {
	v, err := msgauth.New(cfg.Auth, hostname, r)
	if err != nil {
		// Only its resolver can fail, on the servers it is given.
		return nil, fmt.Errorf("auth.dns_servers: %w", err)
	}
	s, err := dkimsign.New(cfg.DKIMSign)
	if err != nil {
		return nil, keyerr.Prefix("dkim_sign.", err)
	}
	return &Inspector{milters: milter.New(hostname, cfg.Milters), auth: v, signer: s, cfg: cfg}, nil
}

// Connect runs the DNS lists and the reverse-DNS requirement for a client
// of the given source; only internet clients are checked.
func (in *Inspector) Connect(ctx context.Context, ip netip.Addr, source rewrite.Source) msgauth.ConnectResult {
	if in == nil || source != rewrite.SourceInternet {
		return msgauth.ConnectResult{}
	}
	return in.auth.CheckConnect(ctx, ip)
}

// Received is one message after DATA, as received: the header before the
// receive-time rewrite, the body seekable (read once per stage).
type Received = milter.Transaction

// Verdict is the outcome of the after-DATA stages.
type Verdict struct {
	// Action: Accept, Quarantine (queue and hold), Discard (answer 250,
	// queue nothing), TempFail or Reject (answer Reply).
	Action milter.Action
	Reply  smtpd.Reply
	Reason string // quarantine reason, or which stage refused
	// Failed lists the milters that failed: passed over (on_failure:
	// accept) or the cause of a 451 (on_failure: tempfail).
	Failed []milter.Failure

	authHeader string
	edits      []milter.HeaderEdit
	strip      func([]byte) []byte
}

// Header returns the header to queue: h (the header after the receive-time
// rewrite) with the milters' edits applied, then, when our checks ran,
// every Authentication-Results field claiming our authserv-id removed and
// ours put on top. Edits come first because their field positions refer
// to the header the milters saw.
func (v Verdict) Header(h []byte) []byte {
	h = milter.ApplyEdits(h, v.edits)
	if v.strip != nil {
		h = append([]byte(v.authHeader), v.strip(h)...)
	}
	return h
}

// Check runs sender authentication (internet clients only, when any check
// is on) and then the milters. A refusal by the checks ends it before the
// milters are asked.
func (in *Inspector) Check(ctx context.Context, m Received) Verdict {
	var v Verdict
	if m.Source == rewrite.SourceInternet && in.auth.Enabled() {
		if _, err := m.Body.Seek(0, io.SeekStart); err != nil {
			return Verdict{Action: milter.TempFail, Reply: smtpd.R(451, "4.3.0", "Internal error, try again later"), Reason: "rewinding the body: " + err.Error()}
		}
		r := in.auth.Verify(ctx, msgauth.Message{ClientIP: m.ClientIP, Helo: m.Helo, MailFrom: m.From, Header: m.Header, Body: m.Body})
		if r.Refuse {
			a := milter.Reject
			if r.Reply.Code/100 == 4 {
				a = milter.TempFail
			}
			return Verdict{Action: a, Reply: r.Reply, Reason: "sender authentication"}
		}
		v.authHeader = r.Header
		v.strip = in.auth.StripOurs
	}
	res := in.milters.Check(ctx, m)
	v.Action, v.Reply, v.Failed, v.edits = res.Action, res.Reply, res.Failed, res.Edits
	switch {
	case res.Action == milter.Quarantine:
		v.Reason = res.Reason
	case res.Action != milter.Accept:
		v.Reason = "milter " + res.Milter
	}
	return v
}

// Sign returns the DKIM-Signature field for a message as it will be sent
// (after the delivery-time rewrite), or "" when no key covers its From.
func (in *Inspector) Sign(msg io.Reader) (string, error) {
	return in.signer.Sign(msg)
}

// SignBody wraps the runner's opener of the message as it will be sent
// (after the delivery-time rewrite): it reads the message once to sign it
// and returns an opener that puts the DKIM-Signature field in front, and
// the bytes that adds (for SIZE=). With no key for the From domain the
// opener comes back as it was. A message that cannot be signed comes back
// unchanged with an error wrapping dkimsign.ErrUnsignable, for the log:
// it goes unsigned rather than not at all. Any other error is the spool's;
// the caller defers the delivery.
func (in *Inspector) SignBody(open func() (io.ReadCloser, error)) (_ func() (io.ReadCloser, error), added int, err error) {
	rc, err := open()
	if err != nil {
		return open, 0, err
	}
	sig, err := in.signer.Sign(rc)
	rc.Close()
	if err != nil || sig == "" {
		return open, 0, err
	}
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		return prefixed{io.MultiReader(strings.NewReader(sig), rc), rc}, nil
	}, len(sig), nil
}

// prefixed reads the signature, then the message, and closes the
// message.
type prefixed struct {
	io.Reader
	io.Closer
}

// ReloadKeys reads the DKIM key files again (SIGHUP); on error the keys in
// use stay.
func (in *Inspector) ReloadKeys() error {
	return in.signer.Reload()
}

// Applies reports whether the after-DATA stages have anything to do for
// mail from this kind of client: the sender checks (internet clients
// only) or a milter that takes this source. When nothing applies the
// session streams the body straight into the queue.
func (in *Inspector) Applies(source rewrite.Source) bool {
	if in == nil {
		return false
	}
	if source == rewrite.SourceInternet && in.auth.Enabled() {
		return true
	}
	return milter.Takes(in.cfg.Milters, source)
}

// Signs reports whether any DKIM key is configured; without one the runner
// does not read the message a second time for nothing.
func (in *Inspector) Signs() bool { return in != nil && len(in.cfg.DKIMSign.Keys) > 0 }
