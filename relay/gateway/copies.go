package gateway

import (
	"context"

	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// CopyProbe is a message for Copies.
type CopyProbe struct {
	Source rewrite.Source
	From   string
	// Rcpts are the recipients as given at RCPT.
	Rcpts []string
	// Header is the message's header block as the gateway queues it: as
	// received, with the gateway's own Received field on top (the field
	// that tells which trace fields were written inside).
	Header []byte
	// NoDNS groups the recipients by the routing table alone: recipients
	// of different domains that share MX hosts are then shown in separate
	// copies, where the runner makes one.
	NoDNS bool
}

// DryCopies is what the gateway would make of a message.
type DryCopies struct {
	// Queued is the receive-time decision of the recipients, as DATA
	// queues them (Queued.Rcpts[i].Index points into CopyProbe.Rcpts).
	Queued policy.Message
	Copies []DryCopy
}

// DryCopy is one copy: the recipients that share a next hop and what the
// next hop gets.
type DryCopy struct {
	Decision routing.Decision
	// Rcpts are indexes into Queued.Rcpts.
	Rcpts []int
	Out   rewrite.CopyOutput
	// Err is a rewrite that failed (the runner defers such a copy with
	// 451 4.3.5) or, with Out empty, a recipient no route takes.
	Err error
	// Unresolved says why the MX hosts were not looked up (DNS failed, or
	// NoDNS): the copy is grouped by the routing table's decision alone.
	Unresolved string
}

// Copies shows what each next hop would get of a message: the recipients
// decided as DATA decides them (policy.Queue, without the checks), grouped
// by next hop and each group's copy made as the delivery runner makes it
// (runner.Snapshot.Groups, CopyInput and rewrite.Rewriter.Copy). Nothing
// is sent. err is a receive-time rewrite that failed (DATA answers 451).
func (r *DryRunner) Copies(ctx context.Context, p CopyProbe) (DryCopies, error) {
	m, err := r.st.pol.Queue(p.Source, p.From, p.Rcpts, p.Header)
	if err != nil {
		return DryCopies{}, err
	}
	res := DryCopies{Queued: m}
	env := queue.Envelope{From: m.From, Source: p.Source}
	all := make([]int, len(m.Rcpts))
	for i, q := range m.Rcpts {
		env.Rcpts = append(env.Rcpts, queue.Recipient{Addr: q.Addr})
		all[i] = i
	}
	rs := r.st.runner
	var groups []DryCopy
	add := func(dec routing.Decision, i int, why string) {
		if dec.Kind != routing.KindMX {
			why = "" // configured hosts: the table's decision is the runner's
		}
		for k := range groups {
			if groups[k].Decision.Key == dec.Key && groups[k].Unresolved == why {
				groups[k].Rcpts = append(groups[k].Rcpts, i)
				return
			}
		}
		groups = append(groups, DryCopy{Decision: dec, Rcpts: []int{i}, Unresolved: why})
	}
	byTable := func(i int, why string) {
		dec, err := rs.Router.Match(env.Rcpts[i].Addr, env.From)
		if err != nil {
			groups = append(groups, DryCopy{Decision: dec, Rcpts: []int{i}, Err: err})
			return
		}
		add(dec, i, why)
	}
	if p.NoDNS {
		for _, i := range all {
			byTable(i, "--no-dns")
		}
	} else {
		gs, failed := rs.Groups(ctx, env, all)
		for _, g := range gs {
			groups = append(groups, DryCopy{Decision: g.Decision, Rcpts: g.Rcpts})
		}
		for _, f := range failed {
			byTable(f.Rcpt, f.Err.Error())
		}
	}
	for k := range groups {
		g := &groups[k]
		if g.Err != nil {
			continue
		}
		in := rs.CopyInput(env, g.Decision, g.Rcpts)
		in.Header = p.Header
		g.Out, g.Err = rs.Rewriter.Copy(in)
	}
	res.Copies = groups
	return res, nil
}
