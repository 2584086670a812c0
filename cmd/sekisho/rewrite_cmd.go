package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/rewrite"
)

func init() {
	register(&command{
		name:    "rewrite test",
		summary: "show what the rewrite rules do to addresses or a message (nothing is sent)",
		run:     runRewriteTest,
	})
}

// maxTestHeader bounds the header block read from --message.
const maxTestHeader = 1 << 20

// addressPositions are the positions shown for each address in address
// mode, as exim -brw does. Resent-*, Disposition-Notification-To and
// Return-Receipt-To behave as the class of their name (FORMAT.md).
var addressPositions = []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc"}

func runRewriteTest(env *cmdEnv, args []string) int {
	fs := newFlags(env, "rewrite test",
		"-c FILE [--source inner|authenticated|internet] [--set NAME] [--from A] [--rcpt B]... [--message FILE.eml] [--no-dns] [--json]", `
Runs the rewrite rules of the configuration exactly as the gateway would,
and shows the result. Nothing is sent.

With addresses only (--from, --rcpt), prints what each address becomes in
each position (env-from, env-to, From:, Sender:, Reply-To:, To:, Cc:, Bcc:)
under the receive-time rules and which rules fired, like exim -brw. The
other positions of the envelope are the ones given, so conditions on the
sender or recipient domains apply.

With --message, shows what each next hop gets: the recipients as the
receive-time rules (rewrite.rules) and the aliases decide them, then one
block per copy (one per next hop: a message to LGWAN and to the internet
has two): its route, its envelope, a unified diff of its header against
the message as queued, the rules that fired and the Received fields its
route removed or masked. Each copy is made by the code the delivery runner
runs, so what is printed is what is sent (before a DKIM signature). The
body is never read. Give the message as the gateway queues it, with its
Received field on top (the local copy of a sent message, or sekisho queue
show): that field tells which trace fields were written inside. Without
--from/--rcpt the envelope is taken from the header: Return-Path (or From)
and To, Cc, Bcc. Next hops are looked up in DNS as the gateway does unless
--no-dns is given (recipients are then grouped by the routing table alone).

--set tests one named rule set (rewrite.sets) on its own instead.

Exit 0 when the input was processed, whether or not anything changed;
1 on bad input (configuration, address, message) or a failing rule.`)
	cfgPath := fs.String("c", "", "configuration `file` (required)")
	sourceName := fs.String("source", "inner", "where the message comes from: inner, authenticated or internet")
	setName := fs.String("set", "", "test the rule set `NAME` from rewrite.sets")
	from := fs.String("from", "", "envelope sender `address` (\"\" or <> for the null sender)")
	var rcpts stringList
	fs.Var(&rcpts, "rcpt", "envelope recipient `address` (repeatable)")
	message := fs.String("message", "", "message `file` (.eml) whose header is rewritten")
	asJSON := fs.Bool("json", false, "print one JSON document")
	client := fs.String("client", "", "also decide the rewritten envelope with the relay policy for a client at this IP `address` (it sets the source)")
	noDNS := fs.Bool("no-dns", false, "with --message: group the recipients by the routing table alone, without DNS lookups")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	usageErr := func(msg string) int {
		fmt.Fprintf(env.stderr, "sekisho rewrite test: %s\n", msg)
		return exitUsage
	}
	switch {
	case len(pos) > 0:
		return usageErr(fmt.Sprintf("unexpected argument %q", pos[0]))
	case *cfgPath == "":
		return usageErr("-c FILE is required")
	case *message == "" && !given["from"] && len(rcpts) == 0:
		return usageErr("give addresses (--from, --rcpt) or --message FILE")
	}
	src, err := rewrite.ParseSource(*sourceName)
	if err != nil {
		return usageErr("--source: " + err.Error())
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(env.stderr, "sekisho rewrite test: "+format+"\n", a...)
		return exitFinding
	}

	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	w, err := rewrite.New(cfg.Rewrite)
	if err != nil {
		// The same form as config check: FILE: section.key: reason.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.stderr, "%s: rewrite.%s\n", cfg.Source, line)
		}
		return exitFinding
	}
	t := rewriteTest{source: src, asJSON: *asJSON, out: env.stdout, rs: w.Default(), setLabel: "rewrite.rules"}
	if *client != "" {
		if given["source"] || *setName != "" {
			return usageErr("--client decides the receive-time rules for that client: give neither --source nor --set with it")
		}
		if st := t.usePolicy(env, cfg, *client); st >= 0 {
			return st
		}
	}
	if *setName != "" {
		rs, ok := w.Set(*setName)
		if !ok {
			names := w.SetNames()
			if len(names) == 0 {
				return fail("--set %q: the configuration has no rewrite.sets", *setName)
			}
			return fail("--set %q: no such rule set (have: %s)", *setName, strings.Join(names, ", "))
		}
		t.rs, t.setLabel = rs, "rewrite.sets "+*setName
	}

	t.from = strings.TrimSpace(*from)
	if t.from == "<>" {
		t.from = ""
	}
	if t.from != "" {
		if t.from, err = policy.ParseAddress(t.from); err != nil {
			return fail("--from: %v", err)
		}
	}
	for i, r := range rcpts {
		if rcpts[i], err = policy.ParseAddress(r); err != nil {
			return fail("--rcpt %q: %v", r, err)
		}
	}
	t.rcpts = rcpts

	if *message != "" {
		hdr, err := readMessageHeader(*message)
		if err != nil {
			return fail("--message: %v", err)
		}
		t.message, t.header = *message, hdr
		hFrom, hRcpts := rewrite.EnvelopeFromHeader(hdr)
		if !given["from"] {
			t.from, t.fromHeader = hFrom, true
		}
		if len(rcpts) == 0 {
			t.rcpts, t.rcptsHeader = hRcpts, true
		}
		if *setName == "" {
			return t.runCopies(env, cfg, *noDNS)
		}
		return t.runMessage(env)
	}
	return t.runAddresses(env)
}

func readMessageHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return rewrite.ReadHeader(bufio.NewReader(f), maxTestHeader)
}

// maxTestMessage bounds a message file a dry run reads whole.
const maxTestMessage = 64 << 20

// readMessage reads a message file's header and the whole message.
func readMessage(path string) (header, whole []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	whole, err = io.ReadAll(io.LimitReader(f, maxTestMessage+1))
	if err != nil {
		return nil, nil, err
	}
	if len(whole) > maxTestMessage {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", path, maxTestMessage)
	}
	header, err = rewrite.ReadHeader(bufio.NewReader(bytes.NewReader(whole)), maxTestHeader)
	return header, whole, err
}

// rewriteTest holds one run of the command.
type rewriteTest struct {
	rs       *rewrite.RuleSet
	setLabel string
	source   rewrite.Source
	from     string
	rcpts    []string
	message  string
	header   []byte
	// fromHeader and rcptsHeader: the envelope came from the message.
	fromHeader, rcptsHeader bool
	asJSON                  bool
	out                     io.Writer
	// policy decides the transaction with the relay policy (--client).
	policy func(*rewriteTest) []gateway.Step
	dr     *gateway.DryRunner // --client or --message: the configuration loaded as the gateway loads it
}

// The JSON document: the fields the issue names (envelope, headers, trace)
// plus what makes it self-explaining.
type jsonEnvelope struct {
	From string   `json:"from"`
	Rcpt []string `json:"rcpt"`
}

type jsonHeader struct {
	Field      string `json:"field"`
	FieldIndex int    `json:"field_index"`
	Index      int    `json:"index"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Rule       string `json:"rule"`
	Note       string `json:"note,omitempty"`
}

type jsonPosition struct {
	Position string `json:"position"`
	After    string `json:"after"`
	Rule     string `json:"rule"`
	Note     string `json:"note,omitempty"`
}

type jsonAddress struct {
	Address   string         `json:"address"`
	Positions []jsonPosition `json:"positions"`
}

type jsonResult struct {
	Source               string         `json:"source"`
	RuleSet              string         `json:"rule_set"`
	Message              string         `json:"message,omitempty"`
	SenderFromHeader     bool           `json:"sender_from_header,omitempty"`
	RecipientsFromHeader bool           `json:"recipients_from_header,omitempty"`
	Envelope             jsonEnvelope   `json:"envelope"`
	OriginalEnvelope     jsonEnvelope   `json:"original_envelope"`
	Headers              []jsonHeader   `json:"headers"`
	Addresses            []jsonAddress  `json:"addresses,omitempty"`
	Diff                 string         `json:"diff,omitempty"`
	Trace                []rewrite.Step `json:"trace"`
	Changed              bool           `json:"changed"`
	Error                string         `json:"error,omitempty"`
	// Policy is the relay policy's decision of the transaction (--client).
	Policy []gateway.Step `json:"policy,omitempty"`
}

func (t *rewriteTest) newResult(out rewrite.Output, err error) *jsonResult {
	res := &jsonResult{
		Source: t.source.String(), RuleSet: t.setLabel, Message: t.message,
		SenderFromHeader: t.fromHeader, RecipientsFromHeader: t.rcptsHeader,
		Envelope:         jsonEnvelope{From: out.From, Rcpt: nonNil(out.To)},
		OriginalEnvelope: jsonEnvelope{From: out.OrigFrom, Rcpt: nonNil(out.OrigTo)},
		Headers:          []jsonHeader{},
		Trace:            nonNilSteps(out.Trace),
		Changed:          out.Changed,
	}
	if err != nil {
		res.Error = err.Error()
	}
	if t.policy != nil {
		res.Policy = t.policy(t)
	}
	return res
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilSteps(s []rewrite.Step) []rewrite.Step {
	if s == nil {
		return []rewrite.Step{}
	}
	return s
}

// runMessage rewrites the message's envelope and header.
func (t *rewriteTest) runMessage(env *cmdEnv) int {
	out, err := t.rs.Rewrite(rewrite.Input{From: t.from, To: t.rcpts, Header: t.header, Source: t.source})
	res := t.newResult(out, err)
	res.Headers = headerChanges(t.header, out.Header, out.Trace, nil)
	res.Diff = rewrite.DiffHeader(t.header, out.Header, t.message+" (received)", t.message+" (rewritten)")
	if t.asJSON {
		return t.emitJSON(env, res, err)
	}
	w := t.out
	fmt.Fprintf(w, "source: %s; rules: %s (%d)\n", t.source, t.setLabel, t.rs.Len())
	fmt.Fprintf(w, "message: %s\n", t.message)
	t.printEnvelopeOrigin()
	fmt.Fprintln(w, "\nenvelope")
	t.printEnvelope(out)
	fmt.Fprintln(w, "\nheader")
	if res.Diff == "" {
		fmt.Fprintln(w, "  (unchanged)")
	} else {
		fmt.Fprint(w, res.Diff)
	}
	fmt.Fprintln(w, "\ntrace")
	printTrace(w, out.Trace)
	return t.finish(env, err)
}

func (t *rewriteTest) printEnvelope(out rewrite.Output) {
	line := func(label, before, after string, pos string, index int) {
		rules, notes := rulesAt(out.Trace, -1, pos, index)
		fmt.Fprintf(t.out, "  %-5s %s\n", label, change(before, after, rules, notes))
	}
	if out.OrigFrom == "" {
		fmt.Fprintf(t.out, "  %-5s <> (null sender: never rewritten)\n", "from")
	} else {
		line("from", out.OrigFrom, out.From, rewrite.PosEnvFrom, 0)
	}
	for i := range out.OrigTo {
		line("rcpt", out.OrigTo[i], out.To[i], rewrite.PosEnvTo, i)
	}
	if len(out.OrigTo) == 0 {
		fmt.Fprintf(t.out, "  %-5s (none)\n", "rcpt")
	}
}

// change renders "before -> after  [rules]" or "before (unchanged)".
func change(before, after, rules, notes string) string {
	s := before
	if after != before {
		s += " -> " + after
	} else {
		s += " (unchanged)"
	}
	if rules != "" {
		s += "  [" + rules + "]"
	}
	if notes != "" {
		s += "  " + notes
	}
	return s
}

// rulesAt names the rules that fired at a position, in order, and the notes.
func rulesAt(trace []rewrite.Step, field int, pos string, index int) (rules, notes string) {
	var rs, ns []string
	for _, st := range trace {
		if st.Field != field || st.Index != index || (field < 0 && st.Position != pos) {
			continue
		}
		if st.Rule != "" {
			rs = append(rs, st.Rule)
		}
		if st.Note != "" {
			ns = append(ns, st.Note)
		}
	}
	return strings.Join(rs, ", "), strings.Join(ns, "; ")
}

// headerChanges pairs every address of the address fields before and
// after, with the rules that fired on it; removed are Received fields the
// copy dropped (their absence shifts the fields after them).
func headerChanges(before, afterHeader []byte, trace []rewrite.Step, removed []rewrite.ReceivedChange) []jsonHeader {
	after := map[[2]int]rewrite.HeaderAddress{}
	for _, a := range rewrite.ScanHeader(afterHeader) {
		f := a.FieldIndex
		for _, r := range removed { // in header order
			if r.Removed && r.Field <= f {
				f++
			}
		}
		after[[2]int{f, a.Index}] = a
	}
	res := []jsonHeader{}
	for _, a := range rewrite.ScanHeader(before) {
		h := jsonHeader{Field: a.Field, FieldIndex: a.FieldIndex, Index: a.Index, Before: a.AddrSpec, After: after[[2]int{a.FieldIndex, a.Index}].AddrSpec}
		h.Rule, h.Note = rulesAt(trace, a.FieldIndex, "", a.Index)
		if h.Note == "" && a.Problem != "" {
			h.Note = "not rewritten: " + a.Problem
		}
		res = append(res, h)
	}
	return res
}

func printTrace(w io.Writer, trace []rewrite.Step) {
	if len(trace) == 0 {
		fmt.Fprintln(w, "  (no rule fired)")
		return
	}
	for _, st := range trace {
		var where string
		switch {
		case st.Position == rewrite.PosEnvTo && st.Field < 0:
			where = fmt.Sprintf("env-to #%d", st.Index+1)
		case st.Field < 0:
			where = st.Position
		case st.Index < 0:
			where = fmt.Sprintf("%s: (field %d)", st.Position, st.Field+1)
		default:
			where = fmt.Sprintf("%s: #%d (field %d)", st.Position, st.Index+1, st.Field+1)
		}
		s := fmt.Sprintf("  %-26s", where)
		if st.Rule != "" {
			s += " " + st.Rule + ":"
		}
		switch {
		case st.After != "":
			s += " " + st.Before + " -> " + st.After
		case st.Before != "":
			s += " " + st.Before
		}
		if st.Note != "" {
			s += " (" + st.Note + ")"
		}
		fmt.Fprintln(w, s)
	}
}

// runAddresses shows each address in each position, like exim -brw.
func (t *rewriteTest) runAddresses(env *cmdEnv) int {
	var addrs []string
	seen := map[string]bool{}
	for _, a := range append([]string{t.from}, t.rcpts...) {
		if a != "" && !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	// One message with the envelope as given and a header that has every
	// address in every position: one coherent trace.
	var hdr strings.Builder
	for _, p := range addressPositions {
		hdr.WriteString(p + ": ")
		for i, a := range addrs {
			if i > 0 {
				hdr.WriteString(",\r\n ")
			}
			l, d, _ := addr.Split(a)
			hdr.WriteString(addr.QuoteLocal(l) + "@" + d)
		}
		hdr.WriteString("\r\n")
	}
	hdr.WriteString("\r\n")
	header := []byte(hdr.String())
	out, err := t.rs.Rewrite(rewrite.Input{From: t.from, To: t.rcpts, Header: header, Source: t.source})
	res := t.newResult(out, err)
	res.Headers = headerChanges(header, out.Header, out.Trace, nil)
	if err != nil {
		if t.asJSON {
			return t.emitJSON(env, res, err)
		}
		printTrace(t.out, out.Trace)
		return t.finish(env, err)
	}
	// Positions the given envelope does not cover (the sender as a
	// recipient, a recipient as the sender) get a call of their own.
	for _, a := range addrs {
		ja := jsonAddress{Address: a}
		envFrom, envFromRules, envFromNotes := out.From, "", ""
		if a != t.from {
			o, e := t.rs.Rewrite(rewrite.Input{From: a, To: t.rcpts, Source: t.source})
			if e != nil {
				err = errors.Join(err, e)
			}
			envFrom = o.From
			envFromRules, envFromNotes = rulesAt(o.Trace, -1, rewrite.PosEnvFrom, 0)
		} else {
			envFromRules, envFromNotes = rulesAt(out.Trace, -1, rewrite.PosEnvFrom, 0)
		}
		ja.Positions = append(ja.Positions, jsonPosition{Position: rewrite.PosEnvFrom, After: envFrom, Rule: envFromRules, Note: envFromNotes})
		o, e := t.rs.Rewrite(rewrite.Input{From: t.from, To: []string{a}, Source: t.source})
		if e != nil {
			err = errors.Join(err, e)
		}
		r, n := rulesAt(o.Trace, -1, rewrite.PosEnvTo, 0)
		ja.Positions = append(ja.Positions, jsonPosition{Position: rewrite.PosEnvTo, After: o.To[0], Rule: r, Note: n})
		res.Addresses = append(res.Addresses, ja)
	}
	for _, h := range rewrite.ScanHeader(out.Header) {
		if h.Index < 0 || h.Index >= len(addrs) {
			continue
		}
		r, n := rulesAt(out.Trace, h.FieldIndex, "", h.Index)
		ja := &res.Addresses[h.Index]
		ja.Positions = append(ja.Positions, jsonPosition{Position: h.Field + ":", After: h.Address, Rule: r, Note: n})
	}
	if t.asJSON {
		return t.emitJSON(env, res, err)
	}
	w := t.out
	fmt.Fprintf(w, "source: %s; rules: %s (%d)\n", t.source, t.setLabel, t.rs.Len())
	fmt.Fprintf(w, "envelope: from %s; rcpt %s\n", orNull(t.from), orNone(t.rcpts))
	for _, ja := range res.Addresses {
		fmt.Fprintf(w, "\n%s\n", ja.Address)
		for _, p := range ja.Positions {
			fmt.Fprintf(w, "  %-10s %s\n", p.Position, change(ja.Address, p.After, p.Rule, p.Note))
		}
	}
	return t.finish(env, err)
}

func orNull(a string) string {
	if a == "" {
		return "<>"
	}
	return a
}

func orNone(a []string) string {
	if len(a) == 0 {
		return "(none)"
	}
	return strings.Join(a, ", ")
}

func (t *rewriteTest) emitJSON(env *cmdEnv, res any, err error) int {
	enc := json.NewEncoder(t.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if e := enc.Encode(res); e != nil {
		fmt.Fprintln(env.stderr, e)
		return exitFinding
	}
	return t.finish(env, err)
}

func (t *rewriteTest) finish(env *cmdEnv, err error) int {
	if t.policy != nil && !t.asJSON {
		t.printPolicy()
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho rewrite test: %v\n", err)
		return exitFinding
	}
	return exitOK
}
