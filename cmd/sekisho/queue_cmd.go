package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

func init() {
	register(&command{name: "queue list", summary: "list the queued messages and their recipients' state", run: runQueueList})
	register(&command{name: "queue show", summary: "show one queued message: envelope, recipients, header", run: runQueueShow})
	for _, op := range []struct{ name, summary, help string }{
		{queue.OpRetry, "make deferred recipients due now (ID... or --all)",
			"Makes every deferred recipient of the messages due now; a held message stays held."},
		{queue.OpDelete, "remove queued messages without a bounce",
			"Removes the messages from the queue. No DSN is sent. This cannot be undone."},
		{queue.OpHold, "keep queued messages from delivery",
			"Keeps the messages queued but not delivered until 'sekisho queue release'."},
		{queue.OpRelease, "lift a hold", "Lets held messages be delivered again."},
	} {
		register(&command{name: "queue " + op.name, summary: op.summary, run: func(env *cmdEnv, args []string) int {
			return runQueueChange(env, op.name, op.help, args)
		}})
	}
}

// queueCommandTimeout bounds the wait for a running gateway's answer.
const queueCommandTimeout = 30 * time.Second

func queueConfig(env *cmdEnv, path string) (queue.Config, bool) {
	cfg, ok := env.config(path)
	if !ok {
		return queue.Config{}, false
	}
	qc := cfg.Relay.Queue
	// The spool is relative to the file's folder, whoever resolves it
	// (resolving twice changes nothing).
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			qc.Resolve(filepath.Dir(abs))
		}
	}
	return qc, true
}

func runQueueList(env *cmdEnv, args []string) int {
	fs := newFlags(env, "queue list", "[-c FILE] [--json]", `
Lists the queued messages, oldest first, with each recipient's state, the
number of attempts, the next attempt and the last error. Safe while the
gateway runs: it reads what is committed without stopping anything.
--json prints one JSON array.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "sekisho queue list: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	q, ok := inspectQueue(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	defer q.Close()
	msgs := q.List()
	if *asJSON {
		return printJSON(env, msgs)
	}
	var total int64
	held := 0
	for _, m := range msgs {
		printMessageSummary(env.stdout, m)
		total += m.Envelope.Size
		if m.Held {
			held++
		}
	}
	fmt.Fprintf(env.stdout, "-- %d message%s, %d bytes", len(msgs), plural(len(msgs)), total)
	if held > 0 {
		fmt.Fprintf(env.stdout, ", %d held", held)
	}
	fmt.Fprintln(env.stdout)
	for _, p := range q.Recovery().Problems {
		fmt.Fprintf(env.stderr, "note: %s\n", p)
	}
	return exitOK
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

const timeLayout = "2006-01-02 15:04:05 -0700"

func printMessageSummary(w io.Writer, m queue.Message) {
	e := m.Envelope
	fmt.Fprintf(w, "%s  %s  %7d  <%s>", m.ID, e.ReceivedAt.Local().Format(timeLayout), e.Size, e.From)
	if m.Held {
		fmt.Fprint(w, "  held")
	}
	fmt.Fprintln(w)
	for i, r := range e.Rcpts {
		st := m.Rcpts[i]
		fmt.Fprintf(w, "    %-9s <%s>", st.Status, r.Addr)
		var notes []string
		if st.Attempts > 0 {
			notes = append(notes, fmt.Sprintf("attempts %d", st.Attempts))
		}
		if st.Status == queue.Deferred && !st.NextAttempt.IsZero() {
			notes = append(notes, "next "+st.NextAttempt.Local().Format(timeLayout))
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, ", "))
		}
		if st.LastError != "" {
			fmt.Fprintf(w, " %s", oneLine(st.LastError))
		}
		fmt.Fprintln(w)
	}
}

// oneLine keeps a multi-line SMTP reply on one line of output.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func runQueueShow(env *cmdEnv, args []string) int {
	fs := newFlags(env, "queue show", "[-c FILE] [--json] ID", `
Shows one queued message: its envelope, each recipient's state and the
message header. --json prints one JSON object (the message, with the
header as "header").`)
	cfgPath := fs.String("c", "", "configuration `file`")
	asJSON := fs.Bool("json", false, "print a JSON object")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.stderr, "sekisho queue show: give exactly one message ID")
		return exitUsage
	}
	id, err := queue.ParseID(pos[0])
	if err != nil {
		fmt.Fprintln(env.stderr, "sekisho queue show:", err)
		return exitUsage
	}
	q, ok := inspectQueue(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	defer q.Close()
	m, err := q.Get(id)
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: no such message (delivered, deleted, or a typo)\n", id)
		return exitFinding
	}
	header, herr := readHeader(q, id)
	if *asJSON {
		return printJSON(env, struct {
			queue.Message
			Header string `json:"header"`
		}{m, header})
	}
	e := m.Envelope
	w := env.stdout
	fmt.Fprintf(w, "id:          %s\n", m.ID)
	fmt.Fprintf(w, "received:    %s from %s (HELO %s) via %s\n", e.ReceivedAt.Local().Format(timeLayout), e.ClientIP, e.Helo, e.Source)
	if e.AuthUser != "" {
		fmt.Fprintf(w, "auth user:   %s\n", e.AuthUser)
	}
	fmt.Fprintf(w, "from:        <%s>\n", e.From)
	fmt.Fprintf(w, "size:        %d bytes", e.Size)
	for _, s := range []struct{ k, v string }{{"BODY", e.BodyType}, {"RET", e.Ret}, {"ENVID", e.EnvID}} {
		if s.v != "" {
			fmt.Fprintf(w, ", %s=%s", s.k, s.v)
		}
	}
	if e.SMTPUTF8 {
		fmt.Fprint(w, ", SMTPUTF8")
	}
	fmt.Fprintln(w)
	if m.Held {
		fmt.Fprintln(w, "held:        yes (sekisho queue release to deliver)")
	}
	fmt.Fprintln(w, "recipients:")
	for i, r := range e.Rcpts {
		st := m.Rcpts[i]
		fmt.Fprintf(w, "  %-9s <%s>", st.Status, r.Addr)
		if r.OrigAddr != "" && r.OrigAddr != r.Addr {
			fmt.Fprintf(w, " (received as <%s>)", r.OrigAddr)
		}
		if r.Notify != "" {
			fmt.Fprintf(w, " NOTIFY=%s", r.Notify)
		}
		fmt.Fprintln(w)
		if st.Attempts > 0 {
			fmt.Fprintf(w, "            attempts %d, last %s\n", st.Attempts, st.Updated.Local().Format(timeLayout))
		}
		if st.Status == queue.Deferred && !st.NextAttempt.IsZero() {
			fmt.Fprintf(w, "            next attempt %s\n", st.NextAttempt.Local().Format(timeLayout))
		}
		if st.LastError != "" {
			fmt.Fprintf(w, "            last error: %s\n", oneLine(st.LastError))
		}
	}
	fmt.Fprintln(w, "header:")
	if herr != nil {
		fmt.Fprintf(w, "  (unreadable: %v)\n", herr)
		return exitFinding
	}
	for _, line := range strings.SplitAfter(header, "\n") {
		if line != "" {
			fmt.Fprint(w, "  "+line)
		}
	}
	return exitOK
}

// maxShownHeader bounds what show prints of a header.
const maxShownHeader = 64 << 10

// readHeader returns the message's header block (up to the empty line).
func readHeader(q *queue.Spool, id queue.ID) (string, error) {
	rc, err := q.Open(id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	br := bufio.NewReader(io.LimitReader(rc, maxShownHeader))
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "" && (line != "" || err != nil) {
			return b.String(), nil
		}
		b.WriteString(strings.TrimRight(line, "\r\n") + "\n")
		if err != nil {
			return b.String(), nil
		}
	}
}

func runQueueChange(env *cmdEnv, op, help string, args []string) int {
	usage := "[-c FILE] ID..."
	if op == queue.OpRetry {
		usage = "[-c FILE] ID... | --all"
	}
	fs := newFlags(env, "queue "+op, usage, help+`

Safe while the gateway runs: the command is handed to it and applied
through its queue; when no gateway runs, the spool is changed directly.
Exit 1 if a message is not in the queue.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	all := false
	if op == queue.OpRetry {
		fs.BoolVar(&all, "all", false, "every message with a deferred recipient")
	}
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	cmd := queue.Command{Op: op, All: all}
	for _, p := range pos {
		id, err := queue.ParseID(p)
		if err != nil {
			fmt.Fprintf(env.stderr, "sekisho queue %s: %v\n", op, err)
			return exitUsage
		}
		cmd.IDs = append(cmd.IDs, id)
	}
	if err := cmd.Validate(); err != nil {
		fmt.Fprintf(env.stderr, "sekisho queue %s\n", err)
		return exitUsage
	}
	qcfg, ok := queueConfig(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueCommandTimeout)
	defer cancel()
	res, err := queue.Control(ctx, qcfg, cmd)
	done := map[string]string{queue.OpRetry: "due now", queue.OpDelete: "deleted", queue.OpHold: "held", queue.OpRelease: "released"}[op]
	for _, id := range res.Done {
		fmt.Fprintf(env.stdout, "%s: %s\n", id, done)
	}
	for _, id := range res.Missing {
		fmt.Fprintf(env.stderr, "%s: no such message (delivered, deleted, or a typo)\n", id)
	}
	if cmd.All && len(res.Done) == 0 && err == nil {
		fmt.Fprintln(env.stdout, "no deferred messages")
	}
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	if len(res.Missing) > 0 {
		return exitFinding
	}
	return exitOK
}

func printJSON(env *cmdEnv, v any) int {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	return exitOK
}

// inspectQueue opens the configured spool read-only, beside a running
// gateway.
func inspectQueue(env *cmdEnv, cfgPath string) (*queue.Spool, bool) {
	qcfg, ok := queueConfig(env, cfgPath)
	if !ok {
		return nil, false
	}
	q, err := queue.Inspect(qcfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return nil, false
	}
	return q, true
}
