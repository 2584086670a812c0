package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/console"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/store"
)

func init() {
	register(&command{name: "log search", summary: "find messages in the message trace the logs make: every step, by sender, recipient, Message-ID, queue ID, client, time", run: runLogSearch})
}

// logSearchTimeout bounds one search.
const logSearchTimeout = time.Minute

func runLogSearch(env *cmdEnv, args []string) int {
	fs := newFlags(env, "log search", "[-c FILE] [--from A] [--to B] [--message-id ID] [--queue-id Q] [--client IP] [--since T] [--until T] [--events] [--json]", `
Answers "did the mail from X arrive, and where is it?" from the message
trace the gateway writes to relay.store (the console's "message trace"
page runs the same query). Each criterion given must match; times are
local, "2006-01-02 15:04" or a day. Prints one line per message found,
newest first: queue ID (or the session of a refusal), first seen,
sender, recipients, the last step. --events prints every step of each
message instead: received, refused, sanitized, each delivery attempt
with the reply, DSNs, releases, queue changes. Exit 1 when nothing is
found.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	from := fs.String("from", "", "envelope sender `address`")
	to := fs.String("to", "", "recipient `address`")
	msgID := fs.String("message-id", "", "the Message-ID `value` (with or without <>)")
	qid := fs.String("queue-id", "", "a queue `ID` (also finds its DSNs)")
	client := fs.String("client", "", "the client's IP `address`")
	since := fs.String("since", "", "from this local `time`")
	until := fs.String("until", "", "before this local `time`")
	limit := fs.Int("limit", 200, "at most this many `events` searched")
	events := fs.Bool("events", false, "print every step of each message found")
	asJSON := fs.Bool("json", false, "print one JSON document")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "sekisho log search: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	q := store.EventQuery{Sender: *from, Rcpt: *to, MessageID: *msgID, QueueID: queue.CanonicalID(*qid), Client: *client, Limit: *limit}
	var ok bool
	if q.Since, ok = console.ParseTraceTime(*since); !ok {
		fmt.Fprintf(env.stderr, "sekisho log search: --since %q is not \"YYYY-MM-DD HH:MM\" or a day\n", *since)
		return exitUsage
	}
	if q.Until, ok = console.ParseTraceTime(*until); !ok {
		fmt.Fprintf(env.stderr, "sekisho log search: --until %q is not \"YYYY-MM-DD HH:MM\" or a day\n", *until)
		return exitUsage
	}
	if q.Empty() && q.Since.IsZero() {
		fmt.Fprintln(env.stderr, "sekisho log search: give at least one of --from, --to, --message-id, --queue-id, --client, --since")
		return exitUsage
	}
	s, _, ok := env.openStore(*cfgPath)
	if !ok {
		return exitFinding
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), logSearchTimeout)
	defer cancel()
	msgs, err := s.TraceSearch(ctx, q)
	if err != nil {
		fmt.Fprintln(env.stderr, "sekisho log search:", err)
		return exitFinding
	}
	status := exitOK
	if len(msgs) == 0 {
		status = exitFinding
	}
	type traced struct {
		store.TracedMessage
		Events []store.Event `json:"events,omitempty"`
	}
	out := make([]traced, len(msgs))
	for i, m := range msgs {
		out[i].TracedMessage = m
		if *events {
			if m.QueueID != "" {
				out[i].Events, err = s.TraceMessage(ctx, m.QueueID)
			} else {
				out[i].Events, err = s.SessionEvents(ctx, m.Session)
			}
			if err != nil {
				fmt.Fprintln(env.stderr, "sekisho log search:", err)
				return exitFinding
			}
		}
	}
	if *asJSON {
		if st := printJSON(env, out); st != exitOK {
			return st
		}
		return status
	}
	for _, m := range out {
		id := m.QueueID
		if id == "" {
			id = "session " + m.Session
		}
		fmt.Fprintf(env.stdout, "%s  %s  <%s> -> %s  %s %s", id, m.First.Local().Format(timeLayout), m.Sender,
			strings.Join(m.Rcpts, ","), m.LastKind, m.LastResult)
		if m.MessageID != "" {
			fmt.Fprintf(env.stdout, "  %s", oneLine(m.MessageID))
		}
		fmt.Fprintln(env.stdout)
		for _, e := range m.Events {
			fmt.Fprintf(env.stdout, "    %s  %-8s %-9s %s", e.At.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Result, e.QueueID)
			if e.Ref != "" {
				fmt.Fprintf(env.stdout, "->%s", e.Ref)
			}
			if e.Rcpt != "" {
				fmt.Fprintf(env.stdout, "  %s", e.Rcpt)
			}
			if e.Code != 0 {
				fmt.Fprintf(env.stdout, "  %d", e.Code)
			}
			if e.Rule != "" {
				fmt.Fprintf(env.stdout, "  [%s]", e.Rule)
			}
			if e.Detail != "" {
				fmt.Fprintf(env.stdout, "  %s", oneLine(e.Detail))
			}
			fmt.Fprintln(env.stdout)
		}
	}
	fmt.Fprintf(env.stdout, "-- %d message%s\n", len(msgs), plural(len(msgs)))
	return status
}
