package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/routing"
)

func init() {
	register(&command{name: "relay test", summary: "dry-run the relay policy for one client, sender and recipients", run: runRelayTest})
	register(&command{name: "relay session", summary: "a fake SMTP dialogue on stdin/stdout answered by the real policy", run: runRelaySession})
}

func runRelayTest(env *cmdEnv, args []string) int {
	fs := newFlags(env, "relay test", "-c FILE --client IP --from A --rcpt B... [options] | -c FILE --batch", `
Runs the real relay policy over an imagined transaction and prints the
verdict of every step (connect, helo, auth, mail, rcpt, data) with the rule
that decided, the reply the client would get, the address after alias and
rewrite, and the next hop; then the outbound rule (relay.outbound) the
message would meet and what it would do (hold, approve, bcc-outside,
copy-to). Nothing is sent or queued. With --auth the
account's password is not checked: the test shows what an authenticated
session of that user may do. Addresses are read as a client writes them
("user 1"@example.jp, <a@b>).

--batch reads one JSON probe a line on standard input ({"client": IP,
"helo", "auth", "tls", "listener", "from", "rcpts": [...]}) and writes one
JSON object a line ({"steps": [...]}), with the configuration loaded once.

Exit 1 when a step refuses (for --batch: when a step of any probe refuses).`)
	cfgPath := fs.String("c", "", "configuration `file`")
	client := fs.String("client", "", "the client's IP `address`")
	helo := fs.String("helo", "client.example", "the HELO `name`")
	authUser := fs.String("auth", "", "authenticate as this `account`")
	tls := fs.Bool("tls", false, "the session uses TLS")
	listener := fs.String("listener", "mx", "a listener's `name` (relay.listeners[].name), or a mode: mx, submission or smtps")
	atFlag := fs.String("at", "", "the local `time` of the transaction, \"2006-01-02 15:04\", for rules with times (default now)")
	from := fs.String("from", "", "the envelope sender (\"\" or <> for the null sender)")
	message := fs.String("message", "", "a message `file`: the DATA checks read its header, the outbound rules the whole of it (default: a header with only From)")
	batch := fs.Bool("batch", false, "read JSON probes from standard input, one a line")
	var rcpts stringList
	fs.Var(&rcpts, "rcpt", "an envelope recipient (repeat for more)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if *batch {
		return relayTestBatch(env, *cfgPath)
	}
	probe, msg := gateway.ProbeInput{Client: *client, Helo: *helo, Auth: *authUser, TLS: *tls, Listener: *listener,
		From: *from, Rcpts: rcpts}.Probe()
	if msg != "" {
		fmt.Fprintf(env.stderr, "relay test: %s\n", msg)
		return exitUsage
	}
	if *message != "" {
		h, whole, err := readMessage(*message)
		if err != nil {
			fmt.Fprintf(env.stderr, "relay test: --message: %v\n", err)
			return exitUsage
		}
		probe.Header, probe.Message = h, whole
	}
	if *atFlag != "" {
		at, err := time.ParseInLocation("2006-01-02 15:04", *atFlag, time.Local)
		if err != nil {
			fmt.Fprintf(env.stderr, "relay test: --at: %q is not \"YYYY-MM-DD HH:MM\"\n", *atFlag)
			return exitUsage
		}
		probe.At = at
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	steps, err := gateway.DryRun(cfg.sections(), probe)
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	status := exitOK
	if refused(steps) {
		status = exitFinding
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Steps []gateway.Step `json:"steps"`
		}{steps})
		return status
	}
	for _, s := range steps {
		arg := s.Arg
		if s.Stage == "mail" && arg == "" {
			arg = "<>"
		}
		fmt.Fprintf(env.stdout, "%-7s %-40s %-8s %d %s\n", s.Stage, arg, s.Verdict, s.Code, s.Enhanced)
		if s.Target != "" {
			fmt.Fprintf(env.stdout, "        alias of %s\n", s.Target)
		}
		if s.Rewritten != "" {
			fmt.Fprintf(env.stdout, "        rewritten to %s\n", s.Rewritten)
		}
		if s.NextHop != "" {
			fmt.Fprintf(env.stdout, "        next hop %s\n", s.NextHop)
		}
		if s.Route != nil {
			fmt.Fprintf(env.stdout, "        its copy: %s\n", copyRewrite(*s.Route))
		}
		if s.Limits != "" {
			fmt.Fprintf(env.stdout, "        %s\n", s.Limits)
		}
		fmt.Fprintf(env.stdout, "        rule %s: %s\n", s.Rule, s.Reason)
	}
	return status
}

func runRelaySession(env *cmdEnv, args []string) int {
	fs := newFlags(env, "relay session", "-c FILE --client IP [--listener MODE]", `
Reads an SMTP dialogue on standard input and answers it on standard output
as the gateway would answer a client at --client (like exim -bh). The real
policy, rewrite and checks run; accepted messages are read and discarded,
nothing is queued or sent. Log lines go to standard error. There is no
STARTTLS on standard input: AUTH is offered only where
relay.auth.allow_insecure allows it and a require_tls listener refuses
MAIL, as for a live client without TLS; --listener smtps answers as to a
client inside implicit TLS.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	client := fs.String("client", "", "the client's IP `address`")
	listener := fs.String("listener", "mx", "a listener's `name` (relay.listeners[].name), or a mode: mx, submission or smtps")
	quiet := fs.Bool("q", false, "no log lines on standard error")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	ip, err := netip.ParseAddr(*client)
	if err != nil {
		fmt.Fprintf(env.stderr, "relay session: --client: %q is not an IP address\n", *client)
		return exitUsage
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	var logw io.Writer = env.stderr
	if *quiet {
		logw = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := gateway.Session(cfg.sections(), ip, *listener, env.stdin, env.stdout, log); err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	return exitOK
}

// copyRewrite says how a route rewrites its copy of a message, after the
// sender and header rules of rewrite.rules (`rewrite test --message` shows
// the copy itself).
func copyRewrite(d routing.Decision) string {
	return fmt.Sprintf("%s, Received fields %s", rewriteSet(d.Rewrite), receivedMode(d))
}

// rewriteSet names a route's rewrite set for people.
func rewriteSet(set string) string {
	if set == "" {
		return "no rewrite set"
	}
	return "rewrite set " + set
}

// receivedMode is what a route's copy keeps of the Received fields
// (keep when it says nothing).
func receivedMode(d routing.Decision) string {
	if d.Received == "" {
		return string(routing.ReceivedKeep)
	}
	return string(d.Received)
}
