package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
)

func init() {
	register(&command{name: "quarantine list", summary: "list the originals kept by the sanitize stage", run: runQuarantineList})
	register(&command{name: "quarantine show", summary: "show one kept original: envelope, what was removed, header", run: runQuarantineShow})
	register(&command{name: "quarantine release", summary: "deliver a kept original unsanitized (ID [--to ADDR]...)", run: runQuarantineRelease})
	register(&command{name: "quarantine purge", summary: "remove originals past their retention (or the IDs given)", run: runQuarantinePurge})
}

func openQuarantine(env *cmdEnv, cfgPath string) (*quarantine.Store, bool) {
	cfg, ok := env.config(cfgPath)
	if !ok {
		return nil, false
	}
	q := cfg.Relay.Sanitize.Quarantine
	st, err := quarantine.Open(q.Dir, q.Retention)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return nil, false
	}
	return st, true
}

func runQuarantineList(env *cmdEnv, args []string) int {
	fs := newFlags(env, "quarantine list", "[-c FILE] [--json]", `
Lists the originals the sanitize stage kept, oldest first: release ID,
when it was kept and until when, sender, recipients, size, subject and
what was removed. --json prints one JSON array.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "sekisho quarantine list: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	store, ok := openQuarantine(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	list, err := store.List()
	status := exitOK
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		status = exitFinding
	}
	if *asJSON {
		if list == nil {
			list = []quarantine.Entry{}
		}
		if st := printJSON(env, list); st != exitOK {
			return st
		}
		return status
	}
	for _, e := range list {
		fmt.Fprintf(env.stdout, "%s  %s  until %s  %7d  <%s>", e.ID, e.Stored.Local().Format(timeLayout),
			e.Expires.Local().Format("2006-01-02"), e.Size, e.Envelope.From)
		if len(e.Releases) > 0 {
			fmt.Fprintf(env.stdout, "  released %d×", len(e.Releases))
		}
		fmt.Fprintln(env.stdout)
		fmt.Fprintf(env.stdout, "    to %s  %q\n", rcptList(e.Envelope.Rcpts), e.Subject)
		if rep, err := sanitize.EntryReport(e); err != nil {
			fmt.Fprintf(env.stdout, "    %v\n", err)
		} else if rep != nil {
			fmt.Fprintf(env.stdout, "    %s\n", rep.Summary(""))
		}
	}
	fmt.Fprintf(env.stdout, "-- %d original%s\n", len(list), plural(len(list)))
	return status
}

func rcptList(rs []queue.Recipient) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = "<" + r.Addr + ">"
	}
	return strings.Join(parts, " ")
}

func runQuarantineShow(env *cmdEnv, args []string) int {
	fs := newFlags(env, "quarantine show", "[-c FILE] [--json | --raw] ID", `
Shows one kept original: its envelope, what the stage removed and the
original header. --raw prints the whole original, byte for byte, to
standard output (to open it in a separate, safe environment); --json
prints the entry as one JSON object.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	asJSON := fs.Bool("json", false, "print a JSON object")
	raw := fs.Bool("raw", false, "print the original message")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.stderr, "sekisho quarantine show: give exactly one release ID")
		return exitUsage
	}
	store, ok := openQuarantine(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	e, err := store.Get(pos[0])
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	if *asJSON {
		return printJSON(env, e)
	}
	rc, err := store.Open(e.ID)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	defer rc.Close()
	if *raw {
		if _, err := io.Copy(env.stdout, rc); err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		return exitOK
	}
	w := env.stdout
	fmt.Fprintf(w, "id:         %s\n", e.ID)
	fmt.Fprintf(w, "kept:       %s, until %s\n", e.Stored.Local().Format(timeLayout), e.Expires.Local().Format(timeLayout))
	fmt.Fprintf(w, "received:   %s from %s via %s, route %s\n", e.Envelope.ReceivedAt.Local().Format(timeLayout), e.Envelope.ClientIP, e.Envelope.Source, e.Route)
	fmt.Fprintf(w, "from:       <%s>\n", e.Envelope.From)
	fmt.Fprintf(w, "to:         %s\n", rcptList(e.Envelope.Rcpts))
	fmt.Fprintf(w, "size:       %d bytes\n", e.Size)
	for _, r := range e.Releases {
		fmt.Fprintf(w, "released:   %s to %s as %s\n", r.At.Local().Format(timeLayout), strings.Join(r.To, ", "), r.QueueID)
	}
	if rep, err := sanitize.EntryReport(e); err != nil {
		fmt.Fprintf(w, "report:     %v\n", err)
	} else if rep != nil {
		printReport(w, rep)
	}
	fmt.Fprintln(w, "header:")
	br := bufio.NewReader(rc)
	for {
		line, err := br.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
		fmt.Fprint(w, "  "+strings.TrimRight(line, "\r\n")+"\n")
		if err != nil {
			break
		}
	}
	return exitOK
}

func runQuarantineRelease(env *cmdEnv, args []string) int {
	fs := newFlags(env, "quarantine release", "[-c FILE] [--timeout D] ID [--to ADDR]...", `
Delivers a kept original, unsanitized, to its recipients or to the
addresses given with --to (repeatable). The copy carries a mark that
only this quarantine can make, so the sanitize stage lets it pass; the
release is recorded in the entry. With the gateway running, the copy
is handed to it through the queue's control folder (waiting at most
--timeout for its answer); with the gateway stopped, it is put into the
spool directly.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	var to multiFlag
	fs.Var(&to, "to", "deliver to this `address` instead (repeatable)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for a running gateway to take the copy")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.stderr, "sekisho quarantine release: give exactly one release ID")
		return exitUsage
	}
	for _, a := range to {
		if i := strings.LastIndexByte(a, '@'); i <= 0 || i == len(a)-1 || strings.ContainsAny(a, " <>\r\n") {
			fmt.Fprintf(env.stderr, "sekisho quarantine release: --to %q is not an address\n", a)
			return exitUsage
		}
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	qc := cfg.Relay.Sanitize.Quarantine
	store, err := quarantine.Open(qc.Dir, qc.Retention)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	d, err := store.ReleaseTo(pos[0], to, func(env queue.Envelope, data []byte) (queue.ID, error) {
		return queue.EnqueueControl(ctx, cfg.Relay.Queue, env, data)
	})
	if err != nil {
		fmt.Fprintln(env.stderr, "sekisho quarantine release:", err)
		return exitFinding
	}
	if d.Note != nil {
		fmt.Fprintf(env.stderr, "warning: queued as %s, but the release was not recorded: %v\n", d.QueueID, d.Note)
	}
	fmt.Fprintf(env.stdout, "%s released to %s: queued as %s\n", pos[0], strings.Join(d.To, ", "), d.QueueID)
	return exitOK
}

func runQuarantinePurge(env *cmdEnv, args []string) int {
	fs := newFlags(env, "quarantine purge", "[-c FILE] [ID...]", `
Without IDs: removes every original past its retention
(relay.sanitize.quarantine.retention), and originals a crash left without
an entry. With IDs: removes those originals now. This cannot be undone.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	store, ok := openQuarantine(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	status := exitOK
	if len(pos) > 0 {
		for _, id := range pos {
			if err := store.Delete(id); err != nil {
				fmt.Fprintln(env.stderr, err)
				status = exitFinding
				continue
			}
			fmt.Fprintf(env.stdout, "%s removed\n", id)
		}
		return status
	}
	removed, err := store.Purge()
	for _, id := range removed {
		fmt.Fprintf(env.stdout, "%s removed\n", id)
	}
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		status = exitFinding
	}
	fmt.Fprintf(env.stdout, "-- %d expired original%s removed\n", len(removed), plural(len(removed)))
	return status
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
