package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
)

func init() {
	register(&command{name: "queue salvage", summary: "show, and with --import queue again, what is readable in a set-aside segment", run: runQueueSalvage})
}

func runQueueSalvage(env *cmdEnv, args []string) int {
	fs := newFlags(env, "queue salvage", "[-c FILE] [--import] [--json] SEGMENT-FILE", `
Reads a segment file that recovery set aside (NNNNNNNNNNNNNNNN.seg.corrupt)
or any other segment: every record that passes its checksum is replayed,
skipping damage, then the outcomes recorded about the same messages in the
newer segments beside it. Lists the messages left unfinished, with their
recipients still to deliver.

--import queues them again, as new messages for those recipients, into the
configured spool. It needs the spool to itself: stop the gateway first.
A message still queued under its old ID is not imported. Import a file once:
a second import queues the messages again. Exit 1 when something could not
be read or imported.`)
	cfgPath := fs.String("c", "", "configuration `file` (for --import)")
	doImport := fs.Bool("import", false, "queue the unfinished messages again")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.stderr, "sekisho queue salvage: give exactly one segment file")
		return exitUsage
	}
	s, err := queue.Salvage(pos[0])
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	code := exitOK
	missing := 0
	for _, m := range s.Messages {
		if m.Data == nil {
			missing++
		}
	}
	if missing > 0 {
		code = exitFinding
	}
	var imported map[queue.ID]string
	if *doImport {
		var ok bool
		if imported, ok = importSalvaged(env, *cfgPath, s); !ok {
			code = exitFinding
		}
	}
	if *asJSON {
		if c := printJSON(env, struct {
			queue.Salvaged
			Imported map[queue.ID]string `json:"imported,omitempty"`
		}{s, imported}); c != exitOK {
			return c
		}
		return code
	}
	w := env.stdout
	fmt.Fprintf(w, "%s: segment %d, %d records readable, %d messages finished, %d unfinished\n",
		s.File, s.Segment, s.Records, s.Finished, len(s.Messages))
	for _, p := range s.Problems {
		fmt.Fprintf(w, "  damage: %s\n", p)
	}
	for _, m := range s.Messages {
		fmt.Fprintf(w, "\n%s  from <%s>  %d bytes  received %s\n", m.ID, m.Envelope.From, m.Envelope.Size,
			m.Envelope.ReceivedAt.Local().Format(time.DateTime))
		for i, r := range m.Envelope.Rcpts {
			if i < len(m.Rcpts) && !m.Rcpts[i].Status.Final() {
				fmt.Fprintf(w, "  to <%s>  %s, %d attempts\n", r.Addr, m.Rcpts[i].Status, m.Rcpts[i].Attempts)
			}
		}
		if m.Data == nil {
			fmt.Fprintf(w, "  cannot be imported: %s\n", m.Missing)
		}
		if r, ok := imported[m.ID]; ok {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	return code
}

// importSalvaged queues the salvaged messages into the configured spool,
// which it opens itself: a running gateway holds the spool's lock.
func importSalvaged(env *cmdEnv, cfgPath string, s queue.Salvaged) (map[queue.ID]string, bool) {
	qcfg, ok := queueConfig(env, cfgPath)
	if !ok {
		return nil, false
	}
	q, err := queue.Open(qcfg, queue.WithLockWait(0))
	if errors.Is(err, queue.ErrLocked) {
		fmt.Fprintf(env.stderr, "sekisho queue salvage: %v: stop the gateway, then import\n", err)
		return nil, false
	}
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return nil, false
	}
	defer q.Close()
	out := map[queue.ID]string{}
	all := true
	for _, m := range s.Messages {
		id, err := q.Import(m)
		if err != nil {
			out[m.ID] = "not imported: " + err.Error()
			all = all && errors.Is(err, queue.ErrAlreadyQueued)
			continue
		}
		out[m.ID] = "imported as " + id.String()
	}
	return out, all
}
