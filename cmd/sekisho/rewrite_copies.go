package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/rewrite"
)

// The JSON document of `rewrite test --message` without --set: the
// receive-time decision of the recipients, then one entry a copy.
type jsonCopies struct {
	Source               string         `json:"source"`
	Message              string         `json:"message"`
	SenderFromHeader     bool           `json:"sender_from_header,omitempty"`
	RecipientsFromHeader bool           `json:"recipients_from_header,omitempty"`
	OriginalEnvelope     jsonEnvelope   `json:"original_envelope"`
	Queued               jsonEnvelope   `json:"queued"`
	Trace                []rewrite.Step `json:"trace"`
	Copies               []jsonCopy     `json:"copies"`
	Error                string         `json:"error,omitempty"`
	Policy               []gateway.Step `json:"policy,omitempty"`
}

type jsonCopy struct {
	Route      string `json:"route"`
	NextHop    string `json:"next_hop"`
	Set        string `json:"set,omitempty"`
	Received   string `json:"received"`
	Unresolved string `json:"unresolved,omitempty"`
	// Queued are the copy's recipients as queued; Envelope what is sent.
	Queued   []string       `json:"queued"`
	Envelope jsonEnvelope   `json:"envelope"`
	Headers  []jsonHeader   `json:"headers"`
	Header   string         `json:"header"` // the whole header block sent (before a DKIM signature)
	Diff     string         `json:"diff,omitempty"`
	Trace    []rewrite.Step `json:"trace"`
	// ReceivedFields are the trace fields the route removed or masked.
	ReceivedFields []rewrite.ReceivedChange `json:"received_fields,omitempty"`
	Error          string                   `json:"error,omitempty"`
}

// runCopies shows what each next hop gets of the message: the recipients
// as the receive-time rules decide them, then every copy as the delivery
// runner makes it (gateway.DryRunner.Copies calls the runner's own code).
func (t *rewriteTest) runCopies(env *cmdEnv, cfg *Config, noDNS bool) int {
	if t.dr == nil {
		dr, err := gateway.NewDryRunner(cfg.sections())
		if err != nil {
			fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
			return exitFinding
		}
		t.dr = dr
	}
	ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
	defer cancel()
	dc, err := t.dr.Copies(ctx, gateway.CopyProbe{Source: t.source, From: t.from, Rcpts: t.rcpts, Header: t.header, NoDNS: noDNS})
	res := jsonCopies{Source: t.source.String(), Message: t.message, SenderFromHeader: t.fromHeader, RecipientsFromHeader: t.rcptsHeader,
		OriginalEnvelope: jsonEnvelope{From: t.from, Rcpt: nonNil(t.rcpts)},
		Queued:           jsonEnvelope{From: dc.Queued.From, Rcpt: []string{}}, Trace: nonNilSteps(dc.Queued.Trace), Copies: []jsonCopy{}}
	if err != nil {
		res.Error = "the receive-time rewrite fails (DATA answers 451): " + err.Error()
	}
	for _, q := range dc.Queued.Rcpts {
		res.Queued.Rcpt = append(res.Queued.Rcpt, q.Addr)
	}
	var errs []error
	for k, c := range dc.Copies {
		jc := jsonCopy{Route: c.Decision.Label(), NextHop: c.Decision.Summary(), Set: c.Decision.Rewrite,
			Received: receivedMode(c.Decision), Unresolved: c.Unresolved, Queued: []string{},
			Envelope: jsonEnvelope{From: c.Out.From, Rcpt: nonNil(c.Out.To)}, Headers: []jsonHeader{},
			Trace: nonNilSteps(c.Out.Trace), ReceivedFields: c.Out.Received}
		for _, i := range c.Rcpts {
			jc.Queued = append(jc.Queued, dc.Queued.Rcpts[i].Addr)
		}
		if c.Err != nil {
			jc.Error = c.Err.Error()
			errs = append(errs, fmt.Errorf("copy %d (%s): %w", k+1, jc.Route, c.Err))
		}
		if c.Out.Header != nil {
			jc.Header = string(c.Out.Header)
			jc.Headers = headerChanges(t.header, c.Out.Header, c.Out.Trace, c.Out.Received)
			jc.Diff = rewrite.DiffHeader(t.header, c.Out.Header, t.message+" (queued)",
				fmt.Sprintf("%s (copy %d: %s)", t.message, k+1, jc.Route))
		}
		res.Copies = append(res.Copies, jc)
	}
	if t.policy != nil {
		res.Policy = t.policy(t)
	}
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	if t.asJSON {
		return t.emitJSON(env, res, err)
	}
	t.printCopies(res, dc)
	return t.finish(env, err)
}

func (t *rewriteTest) printCopies(res jsonCopies, dc gateway.DryCopies) {
	w := t.out
	fmt.Fprintf(w, "source: %s; message: %s\n", t.source, t.message)
	t.printEnvelopeOrigin()
	fmt.Fprintf(w, "\nreceived: rewrite.rules (%d) decide where each recipient goes; the queue keeps the sender and header as received\n",
		t.rs.Len())
	fmt.Fprintf(w, "  %-5s %s\n", "from", orNull(t.from))
	queued := map[int]string{}
	for _, q := range dc.Queued.Rcpts {
		queued[q.Index] = q.Addr
	}
	for i, r := range t.rcpts {
		a, ok := queued[i]
		rules, notes := rulesAt(dc.Queued.Trace, -1, rewrite.PosEnvTo, i)
		switch {
		case !ok:
			fmt.Fprintf(w, "  %-5s %s (the same mailbox as an earlier recipient: one copy)\n", "rcpt", r)
		case rules == "" && a != r:
			fmt.Fprintf(w, "  %-5s %s -> %s  (alias)\n", "rcpt", r, a)
		default:
			fmt.Fprintf(w, "  %-5s %s\n", "rcpt", change(r, a, rules, notes))
		}
	}
	if res.Error != "" {
		fmt.Fprintf(w, "  %s\n", res.Error)
	}
	for k, c := range dc.Copies {
		jc := res.Copies[k]
		fmt.Fprintf(w, "\ncopy %d of %d: %s (%s; Received fields: %s)\n", k+1, len(dc.Copies), jc.NextHop, rewriteSet(jc.Set), jc.Received)
		if jc.Unresolved != "" {
			fmt.Fprintf(w, "  MX hosts not looked up (%s): grouped by the routing table alone\n", jc.Unresolved)
		}
		if c.Err != nil && c.Out.To == nil {
			fmt.Fprintf(w, "  not routed: %v\n", c.Err)
			continue
		}
		trace := setLabels(c.Out.Trace)
		fmt.Fprintln(w, "  envelope")
		if c.Out.From == "" {
			fmt.Fprintf(w, "    %-5s <> (null sender: never rewritten)\n", "from")
		} else {
			rules, notes := rulesAt(trace, -1, rewrite.PosEnvFrom, 0)
			fmt.Fprintf(w, "    %-5s %s\n", "from", change(dc.Queued.From, c.Out.From, rules, notes))
		}
		for j, q := range jc.Queued {
			rules, notes := rulesAt(trace, -1, rewrite.PosEnvTo, j)
			line := change(q, c.Out.To[c.Out.Of[j]], rules, notes)
			if first := firstOf(c.Out.Of, j); first != j {
				line += fmt.Sprintf("  (one RCPT with %s)", jc.Queued[first])
			}
			fmt.Fprintf(w, "    %-5s %s\n", "rcpt", line)
		}
		fmt.Fprintln(w, "  header")
		if jc.Diff == "" {
			fmt.Fprintln(w, "    (as queued)")
		} else {
			for _, l := range strings.SplitAfter(strings.TrimSuffix(jc.Diff, "\n"), "\n") {
				fmt.Fprint(w, "    "+l)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "  rules fired")
		var b strings.Builder
		printTrace(&b, trace)
		for _, l := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
			fmt.Fprint(w, "  "+l)
		}
		fmt.Fprintln(w)
		if len(c.Out.Received) > 0 {
			fmt.Fprintln(w, "  Received fields")
			for _, rc := range c.Out.Received {
				if rc.Removed {
					fmt.Fprintf(w, "    field %d removed (added inside by %s)\n", rc.Field+1, orUnknown(rc.By))
				} else {
					fmt.Fprintf(w, "    field %d masked: %s\n", rc.Field+1, strings.Join(rc.Masked, ", "))
				}
			}
		}
		if c.Err != nil {
			fmt.Fprintf(w, "  the rewrite fails (the runner defers this copy with 451 4.3.5): %v\n", c.Err)
		}
	}
}

// printEnvelopeOrigin says where the envelope came from when it was not
// given.
func (t *rewriteTest) printEnvelopeOrigin() {
	switch {
	case t.fromHeader && t.rcptsHeader:
		fmt.Fprintln(t.out, "envelope: taken from the header (Return-Path or From; To, Cc, Bcc); set it with --from and --rcpt")
	case t.fromHeader:
		fmt.Fprintln(t.out, "envelope: sender taken from the header (Return-Path or From); set it with --from")
	case t.rcptsHeader:
		fmt.Fprintln(t.out, "envelope: recipients taken from the header (To, Cc, Bcc); set them with --rcpt")
	}
}

// setLabels names a set's rules "set/rule" for display.
func setLabels(trace []rewrite.Step) []rewrite.Step {
	out := make([]rewrite.Step, len(trace))
	for i, st := range trace {
		if st.Set != "" && st.Rule != "" {
			st.Rule = st.Set + "/" + st.Rule
		}
		out[i] = st
	}
	return out
}

func firstOf(of []int, j int) int {
	for i := range of {
		if of[i] == of[j] {
			return i
		}
	}
	return j
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed host"
	}
	return s
}
