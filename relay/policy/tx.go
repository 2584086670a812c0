package policy

import (
	"bytes"
	"fmt"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Mail decides MAIL FROM. from is the reverse path as the command parser
// hands it over (quotes removed; "" for the null sender). On acceptance
// Rewritten is the sender after the receive-time rewrite.
func (p *Policy) Mail(c Conn, from string) Decision {
	if c.RequireTLS && !c.TLS {
		return decided("mail", from, refusal(530, "5.7.0", "Must issue a STARTTLS command first",
			"builtin:require-tls", "listener requires TLS"), 0, "", "")
	}
	if c.needsAuth() && c.AuthUser == "" {
		return decided("mail", from, refusal(530, "5.7.0", "Authentication required",
			"builtin:submission", "the submission listener requires SMTP AUTH"), 0, "", "")
	}
	if d, over := p.rateLimited(c, "mail", from, ratelimit.Messages); over {
		return d
	}
	gc := c.guard()
	d := decided("mail", from, p.p.Guard.CheckMail(gc, from), 250, "2.1.0", "Sender OK")
	if !d.Accepted() {
		return d
	}
	d.Rewritten = from
	if from == "" {
		return d
	}
	out, err := p.p.Rewriter.Default().Rewrite(rewrite.Input{From: from, Source: p.Source(c)})
	if err != nil || out.From == from {
		// A failing rule answers at DATA (451), where the whole
		// message is rewritten.
		return d
	}
	if v := p.p.Guard.CheckMail(gc, out.From); !v.Accepted() {
		v.Reason = fmt.Sprintf("sender rewritten to %s: %s", out.From, v.Reason)
		d = decided("mail", from, v, 0, "", "")
		d.Rewritten = out.From
		return d
	}
	d.Rewritten = out.From
	return d
}

// Rcpt decides RCPT TO for the sender accepted at MAIL (as given, not
// rewritten): the address, its alias target, the receive-time rewrite of
// both and the check of the result, and the next hop.
func (p *Policy) Rcpt(c Conn, from, to string) Decision {
	if d, over := p.rateLimited(c, "rcpt", to, ratelimit.Recipients); over {
		return d
	}
	gc := c.guard()
	d := decided("rcpt", to, p.p.Guard.CheckRcpt(gc, from, to), 250, "2.1.5", "Recipient OK")
	if !d.Accepted() {
		return d
	}
	res := p.Resolve(p.Source(c), from, to)
	target, rw, rfrom := res.Target, res.Rewritten, res.From
	d.Target, d.Rewritten, d.From = target, rw, rfrom
	if d.Rule == guard.RulePostmaster && target == p.p.Postmaster {
		// relay.postmaster is the administrator's address: no second
		// check.
		d.Key = p.Key(target)
		d.Route, d.RouteErr = res.Route, res.RouteErr
		return d
	}
	if rw != target || rfrom != from {
		// A rewrite never opens a relay, and a sender rewritten into
		// our domains meets the sender checks.
		if v := p.p.Guard.CheckRcpt(gc, rfrom, rw); !v.Accepted() {
			v.Reason = fmt.Sprintf("rewritten to %s (sender %s): %s", rw, orNull(rfrom), v.Reason)
			d.Verdict = v
			return d
		}
	}
	d.Key = p.Key(rw)
	d.Route, d.RouteErr = res.Route, res.RouteErr
	return d
}

// Resolved is what becomes of a recipient the guard accepted.
type Resolved struct {
	Target    string // after alias resolution
	Rewritten string // the target after the receive-time rewrite
	From      string // the sender after the receive-time rewrite
	Route     *routing.Decision
	RouteErr  error
}

// Resolve follows a recipient as the gateway does once it is accepted:
// postmaster of a domain without such an account to relay.postmaster,
// an alias of ours to its target (a target outside is an explicit
// forward), the receive-time rewrite of the target and the sender for
// source src, and the route of the result. It decides nothing: Rcpt
// checks the result; route test and accounts check explain it.
func (p *Policy) Resolve(src rewrite.Source, from, to string) Resolved {
	if p.p.Postmaster != "" && p.p.Guard.IsPostmaster(to) {
		if r, err := p.p.Dir.Lookup(to); err != nil || !r.Ours() || !r.Exists() {
			// No postmaster account here: mail goes to relay.postmaster,
			// never rewritten (RFC 5321 §4.5.1).
			pm := p.p.Postmaster
			res := Resolved{Target: pm, Rewritten: pm, From: from}
			res.Route, res.RouteErr = p.Route(pm, from)
			return res
		}
	}
	target := to
	if r, err := p.p.Dir.Lookup(to); err == nil && r.Ours() && r.Exists() {
		target = r.Target
	}
	res := Resolved{Target: target, Rewritten: target, From: from}
	if out, err := p.p.Rewriter.Default().Rewrite(rewrite.Input{From: from, To: []string{target}, Source: src}); err == nil && len(out.To) == 1 {
		res.Rewritten, res.From = out.To[0], out.From
	}
	// The queue keeps the sender as received (each copy's sender is
	// rewritten for its route at delivery): the runner routes with it.
	res.Route, res.RouteErr = p.Route(res.Rewritten, from)
	return res
}

// Route is the routing table's decision (without DNS) for a recipient as
// it will be queued: the delivery runner routes the same pair.
func (p *Policy) Route(rcpt, from string) (*routing.Decision, error) {
	if p.p.Router == nil {
		return nil, nil
	}
	rd, err := p.p.Router.Match(rcpt, from)
	if err != nil {
		return nil, err
	}
	return &rd, nil
}

func orNull(a string) string {
	if a == "" {
		return "<>"
	}
	return a
}

// Key is the mailbox key of an address: the local part folded only where
// its domain folds local parts (local_part_case), so Tanaka@ and tanaka@
// of a case-sensitive domain are two mailboxes. Foreign local parts are
// never folded: RFC 5321 leaves their case to the receiving host.
func (p *Policy) Key(a string) string {
	l, d, err := addr.Parse(a)
	if err != nil {
		return a
	}
	fold := false
	if dom := p.p.Dir.Domain(d); dom != nil {
		fold = dom.FoldLocal
	}
	return addr.Key(l, d, fold)
}

// Message is what DATA makes of an accepted transaction. The queue keeps
// the sender and the header as received: the receive-time rewrite decides
// the recipients (where each copy goes), and each copy's sender and header
// are rewritten for its route at delivery (rewrite.Rewriter.Copy).
type Message struct {
	From string // the envelope sender to queue: as received
	// Rewritten is the sender as the receive-time rules make it for the
	// whole message, which the checks saw.
	Rewritten string
	// Rcpts are the recipients to queue, duplicates removed, in order.
	Rcpts []Queued
	// Trace is the receive-time rewrite of the recipients.
	Trace []rewrite.Step
}

// Queued is one recipient to queue: Index is its position among the RCPT
// decisions passed to Data.
type Queued struct {
	Index int
	Addr  string
}

// Data decides the message once its header block has been read: from is
// the sender accepted at MAIL, rcpts the accepted RCPT decisions in order.
// A refusal means the whole message is refused.
func (p *Policy) Data(c Conn, from string, rcpts []Decision, header []byte) (Message, Decision) {
	if len(rcpts) == 0 {
		return Message{}, decided("data", "", refusal(503, "5.5.1", "Missing RCPT TO command.", "builtin:no-recipients",
			"no recipient was accepted"), 0, "", "")
	}
	if n := CountReceived(header); n > p.p.MaxReceived {
		return Message{}, decided("data", "", refusal(554, "5.4.6", fmt.Sprintf("Too many hops (%d Received fields): mail loop?", n),
			"builtin:hops", fmt.Sprintf("%d Received fields, the limit is %d", n, p.p.MaxReceived)), 0, "", "")
	}
	gc := c.guard()
	if v := p.p.Guard.CheckHeaderFrom(gc, from, func() []string { return HeaderFrom(header) }); !v.Accepted() {
		return Message{}, decided("data", "From:", v, 0, "", "")
	}
	targets := make([]string, len(rcpts))
	fixed := make([]bool, len(rcpts))
	for i, r := range rcpts {
		targets[i] = r.Target
		fixed[i] = r.Rule == guard.RulePostmaster && r.Target == p.p.Postmaster
	}
	m, err := p.queue(p.Source(c), from, targets, fixed, header)
	if err != nil {
		return Message{}, decided("data", "", refusal(451, "4.3.0", "Address rewriting failed; try again later",
			"builtin:rewrite", err.Error()), 0, "", "")
	}
	relayed := relayedBefore(header, p.p.Hostname) // once: the header is the same for every recipient
	for _, q := range m.Rcpts {
		if relayed {
			if why, ok := p.loop(c, q.Addr, m.From); ok {
				return Message{}, decided("data", q.Addr, refusal(554, "5.4.6", "Mail loop: this message has been here before",
					"builtin:loop", why), 0, "", "")
			}
		}
		if r := rcpts[q.Index]; q.Addr != r.Rewritten || m.Rewritten != r.From {
			// The full rewrite (with the header) differs from the RCPT
			// preview: decide the result again.
			if v := p.p.Guard.CheckRcpt(gc, m.Rewritten, q.Addr); !v.Accepted() {
				v.Reason = fmt.Sprintf("rewritten to %s (sender %s): %s", q.Addr, orNull(m.Rewritten), v.Reason)
				return Message{}, decided("data", q.Addr, v, 0, "", "")
			}
		}
	}
	return m, decided("data", "", guard.Verdict{Action: guard.Accept, Rule: "builtin:data",
		Reason: fmt.Sprintf("queued for %d recipient(s) (source %s)", len(m.Rcpts), p.Source(c))}, 250, "2.0.0", "OK")
}

// Queue is what DATA would queue of a message from source src for the
// recipients rcpts (as given at RCPT), without deciding anything: each
// recipient's alias target (Resolve), the receive-time rewrite, and the
// recipients that resolve to one mailbox merged. rewrite test shows the
// copies of it.
func (p *Policy) Queue(src rewrite.Source, from string, rcpts []string, header []byte) (Message, error) {
	targets := make([]string, len(rcpts))
	fixed := make([]bool, len(rcpts))
	for i, r := range rcpts {
		targets[i] = p.Resolve(src, from, r).Target
		fixed[i] = p.p.Postmaster != "" && targets[i] == p.p.Postmaster && p.p.Guard.IsPostmaster(r)
	}
	return p.queue(src, from, targets, fixed, header)
}

// queue rewrites the recipients' alias targets (fixed ones, relay.postmaster,
// never) with the sender and the header, and merges those that resolve to
// one mailbox.
func (p *Policy) queue(src rewrite.Source, from string, targets []string, fixed []bool, header []byte) (Message, error) {
	out, err := p.p.Rewriter.Default().Rewrite(rewrite.Input{From: from, To: targets, Header: header, Source: src})
	if err != nil {
		return Message{}, err
	}
	m := Message{From: from, Rewritten: out.From}
	for _, st := range out.Trace {
		if st.Position == rewrite.PosEnvTo && st.Field < 0 {
			m.Trace = append(m.Trace, st)
		}
	}
	seen := make(map[string]bool, len(targets))
	for i := range targets {
		a := out.To[i]
		if fixed[i] {
			a = targets[i]
		}
		k := p.Key(a)
		if seen[k] {
			continue // two addresses that resolve to one mailbox get one copy
		}
		seen[k] = true
		m.Rcpts = append(m.Rcpts, Queued{Index: i, Addr: a})
	}
	return m, nil
}

// HeaderFrom lists the addresses of every From field, for the sender
// trust check.
func HeaderFrom(header []byte) []string {
	var out []string
	for _, f := range rewrite.HeaderFrom(header) {
		for _, a := range f.Mailboxes {
			if a.Address != "" {
				out = append(out, a.Address)
			}
		}
	}
	return out
}

// CountReceived counts Received fields in a raw header block.
func CountReceived(h []byte) int {
	n := 0
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i+1], h[i+1:]
		} else {
			h = nil
		}
		if len(line) >= 9 && bytes.EqualFold(line[:9], []byte("received:")) {
			n++
		}
	}
	return n
}
