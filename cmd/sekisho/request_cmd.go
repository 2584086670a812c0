package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/store"
)

func init() {
	register(&command{name: "request list", summary: "list the requests for quarantined originals or held outbound mail (the console's approvals)", run: runRequestList})
	register(&command{name: "request approve", summary: "approve a pending request (ID [--comment TEXT])", run: func(env *cmdEnv, args []string) int {
		return runRequestDecide(env, args, true)
	}})
	register(&command{name: "request deny", summary: "deny a pending request (ID [--comment TEXT]); the requester is told by mail", run: func(env *cmdEnv, args []string) int {
		return runRequestDecide(env, args, false)
	}})
}

// openStore opens relay.store for a command.
func (env *cmdEnv) openStore(cfgPath string) (*store.Store, *Config, bool) {
	cfg, ok := env.config(cfgPath)
	if !ok {
		return nil, nil, false
	}
	if !cfg.Relay.Store.On() {
		fmt.Fprintf(env.stderr, "%s: relay.store is off, so there are no trace or requests to read (set relay.store.driver, or turn the console on)\n", cfg.Source)
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, cfg.Relay.Store, cfg.Relay.Instance())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: relay.%v\n", cfg.Source, err)
		return nil, nil, false
	}
	return s, cfg, true
}

func runRequestList(env *cmdEnv, args []string) int {
	fs := newFlags(env, "request list", "[-c FILE] [--kind release|outbound] [--pending] [--json]", `
Lists the requests for quarantined originals (--kind release, the default)
or for held outbound mail (--kind outbound: the queue ID, the sender, the
rule as reason, hold or approval), newest first, as the console's
approval pages do: number, when, who asked and for whom, the item and the
gateway holding it, the policy, the state, who decided and what came of
it. request approve and request deny decide either kind.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	pending := fs.Bool("pending", false, "only the requests waiting for a decision")
	kind := fs.String("kind", store.KindRelease, "`release` or outbound")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if *kind != store.KindRelease && *kind != store.KindOutbound {
		fmt.Fprintf(env.stderr, "sekisho request list: --kind %q: want release or outbound\n", *kind)
		return exitUsage
	}
	s, _, ok := env.openStore(*cfgPath)
	if !ok {
		return exitFinding
	}
	defer s.Close()
	q := store.RequestQuery{Kind: *kind}
	if *pending {
		q.States = []string{store.StatePending}
	}
	list, err := s.Requests(context.Background(), q)
	if err != nil {
		fmt.Fprintln(env.stderr, "sekisho request list:", err)
		return exitFinding
	}
	if *asJSON {
		if list == nil {
			list = []store.Request{}
		}
		return printJSON(env, list)
	}
	for _, r := range list {
		fmt.Fprintf(env.stdout, "%d  %s  %s  %s@%s  %s  %s", r.ID, r.Created.Local().Format(timeLayout), r.Requester, r.Item, r.Instance,
			r.Policy, r.State)
		if r.DecidedBy != "" {
			fmt.Fprintf(env.stdout, "  by %s", r.DecidedBy)
		}
		if r.Result != "" {
			fmt.Fprintf(env.stdout, "  %s", oneLine(r.Result))
		}
		fmt.Fprintln(env.stdout)
		if r.Reason != "" {
			fmt.Fprintf(env.stdout, "    reason: %s\n", oneLine(r.Reason))
		}
	}
	fmt.Fprintf(env.stdout, "-- %d request%s\n", len(list), plural(len(list)))
	return exitOK
}

func runRequestDecide(env *cmdEnv, args []string, approve bool) int {
	name := "request deny"
	if approve {
		name = "request approve"
	}
	fs := newFlags(env, name, "[-c FILE] ID [--comment TEXT] [--as ADDRESS]", `
Decides a pending request as an approver does on the console: the gateway
that holds the original sends it (within a few seconds) and tells the
requester; a denial is told at once. The decision names --as (default:
the user running the command) and is an audit record.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	comment := fs.String("comment", "", "a `comment` the requester sees")
	as := fs.String("as", "", "the approver's `address` recorded with the decision")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fmt.Fprintf(env.stderr, "sekisho %s: give exactly one request number\n", name)
		return exitUsage
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(env.stderr, "sekisho %s: %q is not a request number\n", name, pos[0])
		return exitUsage
	}
	by := *as
	if by == "" {
		by = "cli"
		if u, err := user.Current(); err == nil {
			by = "cli:" + u.Username
		}
	}
	s, cfg, ok := env.openStore(*cfgPath)
	if !ok {
		return exitFinding
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc := &approval.Service{Store: func() *store.Store { return s }, Instance: cfg.Relay.Instance(), Log: slog.New(slog.NewTextHandler(env.stderr, nil)),
		Notifier: &approval.MailNotifier{Hostname: cfg.Relay.Hostname, Postmaster: cfg.Relay.PostmasterAddress(), ConsoleURL: cfg.Console.URL,
			Enqueue: func(e queue.Envelope, data []byte) (queue.ID, error) {
				return queue.EnqueueControl(ctx, cfg.Relay.Queue, e, data)
			}}}
	r, err := svc.Decide(ctx, id, approve, by, *comment)
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho %s: request %d: %v\n", name, id, err)
		return exitFinding
	}
	action := "deny"
	if approve {
		action = "approve"
	}
	if err := s.AddAudit(ctx, store.AuditRecord{Actor: by, Action: action, Object: r.Item, OK: true,
		Detail: fmt.Sprintf("request %d by %s (command line): %s", r.ID, r.Requester, strings.TrimSpace(*comment))}); err != nil {
		fmt.Fprintf(env.stderr, "warning: the decision is recorded, its audit record is not: %v\n", err)
	}
	fmt.Fprintf(env.stdout, "request %d: %s by %s\n", r.ID, r.State, by)
	return exitOK
}
