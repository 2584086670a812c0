package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"

	"github.com/emersion/go-message/charset"
)

// mimeWords decodes encoded words in every charset mail uses here.
var mimeWords = &mime.WordDecoder{CharsetReader: charset.Reader}

// What the engine does for the outbound rules beside the queue (the
// session's OutboundHandler): a held message becomes a request in the
// store (relay/approval), whose gateway — this one — carries out its
// decision; a sender whose To/Cc bcc_outside changed is told.

// countFiles counts a message's attachments as a mail client shows them
// (the outbound rules' attachment condition): the sanitize stage's
// reader, no text rendered since only the files count. A variable so
// that a test can count the calls.
var countFiles = func(r io.Reader) (int, error) {
	s, err := sanitize.Summarize(r, 0)
	if err != nil {
		return 0, err
	}
	return s.Files(), nil
}

// holdTimeout bounds the store's part of a DATA that holds: the client
// waits for it.
const holdTimeout = 30 * time.Second

// maxDetailText and maxDetailHeader bound what a request keeps of its
// message for the approver's page.
const (
	maxDetailText   = 64 << 10
	maxDetailHeader = 32 << 10
)

// Held records a message the outbound rules held (session.OutboundHandler).
func (e *Engine) Held(id queue.ID, env queue.Envelope, header []byte, d policy.OutboundDecision) error {
	svc := e.Approvals()
	if svc == nil {
		return approval.ErrUnavailable
	}
	h := approval.Held{QueueID: id, Sender: env.From, Policy: approval.PolicyHold, Until: time.Now().Add(d.Hold),
		OnExpiry: store.ExpirySend, Detail: e.outboundDetail(id, header, d)}
	for _, r := range env.Rcpts {
		h.Recipients = append(h.Recipients, r.Addr)
	}
	if g := d.Approve; g != nil {
		h.Policy, h.Group, h.Notify, h.DelegateNotify = approval.PolicyApproval, g.Name, g.Notify, g.DelegateNotify
		h.Until, h.OnExpiry = time.Now().Add(g.Timeout), store.ExpiryReject
		if g.OnTimeout == guard.OnTimeoutSend {
			h.OnExpiry = store.ExpirySend
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
	defer cancel()
	_, err := svc.Hold(ctx, h)
	return err
}

// outboundDetail is what the approver's page shows: the header as
// queued, its From/To/Cc as a client shows them, and the text and files
// read back from the queue.
func (e *Engine) outboundDetail(id queue.ID, header []byte, d policy.OutboundDecision) approval.OutboundDetail {
	det := approval.OutboundDetail{Rule: d.Rule, Actions: d.Actions(), BccMoved: d.Bcc.Moved, CopyTo: d.CopyTo}
	h := header
	if len(h) > maxDetailHeader {
		h = h[:maxDetailHeader]
	}
	det.Header = strings.ToValidUTF8(string(h), "\uFFFD")
	if m, err := mail.ReadMessage(bufio.NewReader(io.MultiReader(bytes.NewReader(header), strings.NewReader("\r\n")))); err == nil {
		det.From, det.To, det.Cc = headerFrom(header), sanitize.DecodeHeader(m.Header.Get("To")), sanitize.DecodeHeader(m.Header.Get("Cc"))
	}
	if m, err := e.queue.Get(id); err == nil {
		det.Size = m.Envelope.Size
	}
	if rc, err := e.queue.Open(id); err == nil {
		if s, err := sanitize.Summarize(rc, maxDetailText); err == nil {
			det.Summary = s
		}
		rc.Close()
	}
	return det
}

// MovedToBcc tells the sender that bcc_outside changed their message's
// header (session.OutboundHandler). A failure is logged: the message is
// queued and goes out.
func (e *Engine) MovedToBcc(id queue.ID, env queue.Envelope, header []byte, d policy.OutboundDecision) {
	if env.From == "" {
		return
	}
	subject := ""
	if s, err := sanitize.Summarize(bytes.NewReader(header), 0); err == nil {
		subject = s.Subject
	}
	if err := e.notices.NotifyBcc(env.From, subject, id.String(), d.Bcc.Moved, d.Bcc.Unreadable); err != nil {
		e.log.Error("telling the sender of the moved recipients failed", "kind", "session", "id", id.String(), "to", env.From, "error", err)
	}
}

// newNotices is the engine's notifier: the notices to requesters and
// senders, queued here from the postmaster.
func (e *Engine) newNotices() *approval.MailNotifier {
	return &approval.MailNotifier{Hostname: e.startCfg.Hostname, Postmaster: e.startCfg.PostmasterAddress(), ConsoleURL: e.consoleURL,
		Enqueue: func(env queue.Envelope, data []byte) (queue.ID, error) {
			return e.queue.Enqueue(env, bytes.NewReader(data))
		},
		LinkKey: func(ctx context.Context) ([]byte, error) {
			st := e.Store()
			if st == nil {
				return nil, approval.ErrUnavailable
			}
			return approval.LinkKey(ctx, st)
		}}
}

// Outbound is the outbound rules in force, for the console: who is in
// which group.
func (e *Engine) Outbound() *guard.Outbound {
	return e.st.Load().outbound
}

// outboundReferences checks what the outbound rules name outside their
// section: a hold or an approval needs the store (the request is kept
// there), a supervisor's copy in our domains must go to a mailbox.
func outboundReferences(sec Sections, lookup func(string) (ours, exists bool, domain string)) []Finding {
	var out []Finding
	for i, r := range sec.Relay.Outbound.Rules {
		key := fmt.Sprintf("relay.outbound.rules[%d]", i)
		if (r.Hold > 0 || r.Approve != "") && !sec.Relay.Store.On() {
			what := "hold"
			if r.Approve != "" {
				what = "approve"
			}
			out = append(out, Finding{key + "." + what, "needs relay.store: a held message's request is kept there (set relay.store.driver, or turn the console on)"})
		}
		if r.CopyTo != "" && lookup != nil {
			if ours, exists, dom := lookup(r.CopyTo); ours && !exists {
				out = append(out, Finding{key + ".copy_to", fmt.Sprintf("%s is in our domain %s but no account or alias of accounts: every copy would be refused by the inner server", r.CopyTo, dom)})
			}
		}
	}
	return out
}

// outboundWarnings: rules that can never match, approval groups nobody
// can decide for, notices without links, and time-outs that outlast the
// delivery lifetime.
func outboundWarnings(sec Sections, o *guard.Outbound, ours func(string) bool) []Finding {
	var out []Finding
	c := sec.Relay
	for _, w := range o.Warnings(guard.OutboundLimits{MaxRecipients: c.Limits.MaxRecipients, MaxMessageBytes: c.Limits.MaxMessageBytes, Ours: ours}) {
		out = append(out, Finding{"relay.outbound." + w.Key, w.Text})
	}
	holds := false
	for _, r := range c.Outbound.Rules {
		holds = holds || r.Hold > 0 || r.Approve != ""
	}
	if holds && sec.ConsoleURL == "" {
		out = append(out, Finding{"console.url", "not set: the held mail's notices and the approval mail carry no link to the console"})
	}
	for i, g := range o.Groups() {
		if g.Timeout >= c.Delivery.TempFailLifetime {
			out = append(out, Finding{fmt.Sprintf("relay.outbound.groups[%d].timeout", i),
				fmt.Sprintf("%v is not shorter than relay.delivery.tempfail_lifetime (%v), which counts from when the message was accepted: a message approved late bounces at its first temporary failure. Give the group a shorter timeout (e.g. 4h), or raise tempfail_lifetime",
					g.Timeout, c.Delivery.TempFailLifetime)})
		}
	}
	return out
}

// outboundStep is the outbound rules' step of a dry run.
func outboundStep(pol *policy.Policy, conn policy.Conn, msg policy.Message, header []byte, message []byte) Step {
	in := policy.OutboundInput{Msg: msg, Header: header, Size: -1, Attachments: -1}
	if message != nil {
		in.Size = int64(len(message))
		if n, err := countFiles(bytes.NewReader(message)); err == nil {
			in.Attachments = n
		}
	}
	d := pol.Outbound(conn, in)
	s := Step{Stage: "outbound", Verdict: "accept", Rule: d.Rule, Reason: d.Summary()}
	if d.Rule != "" {
		s.Arg = d.Actions()
	}
	if d.Bcc.Header != nil {
		s.Reason += "; the header's To/Cc become:\n" + rewrite.DiffHeader(header, d.Bcc.Header, "received", "queued")
	}
	return s
}
