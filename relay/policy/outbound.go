package policy

import (
	"fmt"

	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/rewrite"
)

// The outbound rules (relay.outbound) are decided at DATA, once policy.Data
// has accepted the message and the receive-time rewrite has settled its
// recipients, and before it is queued. Before the queue, because their
// outcome is part of the queue record: a held message is written held in
// the record that stores it (a crash cannot leave it unheld, and no
// delivery worker can take it first), the header with its outside
// addresses moved out of To/Cc is the one spooled (every copy and the
// approver see the same), and a supervisor's copy is one more recipient
// of the same record. At DATA, because only the whole message says
// whether it has an attachment and how large it is, and To/Cc are in its
// header. After the rewrite, because the recipients are judged inside or
// outside as they will be delivered (an alias of ours resolved, a
// regional address made its LGWAN twin).

// OutboundInput is what DATA knows of an accepted message.
type OutboundInput struct {
	Msg Message
	// Header is the header block as received (To and Cc are read here).
	Header []byte
	// Size is the message's size in bytes and Attachments the number of
	// its files (sanitize.Summary.Files); -1 when not read (a dry run
	// without a message), and a rule that needs it does not match.
	Size        int64
	Attachments int
}

// OutboundDecision is what the outbound rules make of a message.
type OutboundDecision struct {
	guard.OutboundVerdict
	// Applies is false for mail that is not outbound: from the internet,
	// or with no outbound rules.
	Applies bool
	// Bcc is what bcc_outside did to the header (Bcc.Header nil: nothing).
	Bcc rewrite.BccResult
}

// Summary says in one line what happens, for logs and relay test.
func (d OutboundDecision) Summary() string {
	if !d.Applies {
		return d.Reason
	}
	s := d.Reason + ": " + d.Actions()
	if d.Rule != "" {
		s = d.Rule + " " + s
	}
	if d.Bcc.Header != nil {
		s += fmt.Sprintf(" (%d outside addresses moved out of To/Cc)", len(d.Bcc.Moved))
	} else if d.BccOutside >= 0 {
		s += fmt.Sprintf(" (%d outside addresses in To/Cc: left as they are)", d.Bcc.Outside)
	}
	if len(d.Skipped) > 0 {
		s += fmt.Sprintf("; not decided without the message: %v", d.Skipped)
	}
	return s
}

// HasOutbound reports whether there are outbound rules.
func (p *Policy) HasOutbound() bool { return p.p.Outbound != nil && !p.p.Outbound.Empty() }

// OutboundApplies reports whether the outbound rules look at mail from
// this client: mail our users send (the inner server, SMTP AUTH), when
// there are rules.
func (p *Policy) OutboundApplies(c Conn) bool {
	if !p.HasOutbound() {
		return false
	}
	src := p.Source(c)
	return src == rewrite.SourceInner || src == rewrite.SourceAuthenticated
}

// OutboundNeedsContent reports whether deciding needs the whole message
// read first (a rule looks at attachments or the size).
func (p *Policy) OutboundNeedsContent(c Conn) bool {
	return p.OutboundApplies(c) && p.p.Outbound.NeedsContent()
}

// Inside reports whether an address is inside: in one of our domains or
// in relay.outbound.inside_domains.
func (p *Policy) Inside(address string) bool {
	if res, err := p.p.Dir.Lookup(address); err == nil && res.Ours() {
		return true
	}
	return p.p.Outbound != nil && p.p.Outbound.InsideDomain(address)
}

// Outbound decides the outbound rules for an accepted message.
func (p *Policy) Outbound(c Conn, in OutboundInput) OutboundDecision {
	if !p.OutboundApplies(c) {
		d := OutboundDecision{OutboundVerdict: guard.OutboundVerdict{BccOutside: -1, Reason: "no outbound rules"}}
		if p.HasOutbound() {
			d.Reason = fmt.Sprintf("mail from the %s: the outbound rules do not apply", p.Source(c))
		}
		return d
	}
	m := guard.OutboundMessage{Senders: []string{in.Msg.From}, Size: in.Size, Attachments: in.Attachments, At: c.At}
	if in.Msg.Rewritten != in.Msg.From {
		m.Senders = append(m.Senders, in.Msg.Rewritten)
	}
	for _, q := range in.Msg.Rcpts {
		m.Rcpts = append(m.Rcpts, guard.OutboundRcpt{Addr: q.Addr, Inside: p.Inside(q.Addr)})
	}
	d := OutboundDecision{OutboundVerdict: p.p.Outbound.Match(m), Applies: true}
	if d.BccOutside >= 0 {
		d.Bcc = rewrite.MoveToBcc(in.Header, func(a string) bool { return !p.Inside(a) }, d.BccOutside)
	}
	return d
}

// OutboundGroup returns an approval group of the snapshot.
func (p *Policy) OutboundGroup(name string) (*guard.Group, bool) {
	if p.p.Outbound == nil {
		return nil, false
	}
	return p.p.Outbound.Group(name)
}
