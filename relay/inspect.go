package relay

import (
	"context"
	"io"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/msgauth"
)

// Inspection bundles the content stages of relay.inspect: the connect
// checks, the after-DATA checks (sender authentication, then milters) and
// DKIM signing at delivery. It is safe for concurrent use; build one per
// configuration (reload) and keep it with the rest of the state.
type Inspection struct {
	milters *milter.Client
	auth    *msgauth.Verifier
	signer  *dkimsign.Signer
	cfg     InspectConfig // which sources the milters take; whether any key signs
}

// NewInspection builds the stages of a validated configuration; it reads
// the DKIM key files. r nil means the resolver of inspect.auth.dns_servers.
func NewInspection(cfg InspectConfig, hostname string, r msgauth.Resolver) (*Inspection, error) {
	v, err := msgauth.New(cfg.Auth, hostname, r)
	if err != nil {
		return nil, err
	}
	s, err := dkimsign.New(cfg.DKIMSign)
	if err != nil {
		return nil, err
	}
	return &Inspection{milters: milter.New(hostname, cfg.Milters), auth: v, signer: s, cfg: cfg}, nil
}

// Connect runs the DNS lists and the reverse-DNS requirement for a client
// of the given source (milter.SourceInternet, ...); only internet clients
// are checked.
func (in *Inspection) Connect(ctx context.Context, ip netip.Addr, source string) msgauth.ConnectResult {
	if source != milter.SourceInternet {
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
	Reply  milter.Reply
	Reason string // quarantine reason, or which stage refused
	// Failed lists milters passed over under on_failure: accept.
	Failed []error

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
func (in *Inspection) Check(ctx context.Context, m Received) Verdict {
	var v Verdict
	if m.Source == milter.SourceInternet && in.auth.Enabled() {
		if _, err := m.Body.Seek(0, io.SeekStart); err != nil {
			return Verdict{Action: milter.TempFail, Reply: milter.Reply{Code: 451, Enhanced: "4.3.0", Text: "Internal error, try again later"}, Reason: "rewinding the body: " + err.Error()}
		}
		r := in.auth.Verify(ctx, msgauth.Message{ClientIP: m.ClientIP, Helo: m.Helo, MailFrom: m.From, Header: m.Header, Body: m.Body})
		if r.Refuse {
			a := milter.Reject
			if r.Reply.Code/100 == 4 {
				a = milter.TempFail
			}
			return Verdict{Action: a, Reply: milter.Reply(r.Reply), Reason: "sender authentication"}
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
func (in *Inspection) Sign(msg io.Reader) (string, error) {
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
func (in *Inspection) SignBody(open func() (io.ReadCloser, error)) (_ func() (io.ReadCloser, error), added int, err error) {
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
func (in *Inspection) ReloadKeys() error {
	return in.signer.Reload()
}
