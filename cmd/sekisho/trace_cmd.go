package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/ops/trace"
)

func init() {
	register(&command{name: "trace", summary: "show the SMTP exchanges of live sessions, inbound and outbound (like epstrs -debug)", run: runTrace})
}

func runTrace(env *cmdEnv, args []string) int {
	fs := newFlags(env, "trace", "-c FILE [--client CIDR] [--next-hop HOST] [--bodies]", `
Attaches to the running gateway (its socket trace.sock in relay.queue.dir;
root or the gateway's user only) and prints every line of the matching
sessions as they happen, without a restart, until interrupted:

  15:04:05.000 in  0B9K6R4Q2E 192.0.2.7:50123 RECV <- [EHLO client.example
  15:04:05.001 in  0B9K6R4Q2E 192.0.2.7:50123 SEND -> [250-gw.example Hello client.example
  15:04:06.210 out D1 mx.example 198.51.100.9:25 SEND -> [MAIL FROM:<a@example.jp>

"in" sessions are clients talking to us (RECV: what the client sent,
SEND: our reply; the ID is the session of the logs); "out" sessions are our
deliveries (SEND: what we sent, RECV: the next hop's reply). "----" lines are
notes: a session watched, its message body (size only unless --bodies),
lines dropped because this reader was too slow (the gateway never waits).
AUTH secrets are never shown. --client selects inbound sessions from a
network, --next-hop outbound sessions to a host name or address; with only
one of them, the other side is not shown.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	client := fs.String("client", "", "only inbound sessions from this `CIDR` (or address)")
	hop := fs.String("next-hop", "", "only outbound sessions to this `HOST` (name or address)")
	bodies := fs.Bool("bodies", false, "show message bodies too")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "sekisho trace: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	f := trace.Filter{NextHop: strings.TrimSpace(*hop), Bodies: *bodies}
	if *client != "" {
		p, err := parsePrefix(*client)
		if err != nil {
			fmt.Fprintf(env.stderr, "sekisho trace: --client %q: %v\n", *client, err)
			return exitUsage
		}
		f.Client = p
	}
	qc, ok := queueConfig(env, *cfgPath)
	if !ok {
		return exitFinding
	}
	done := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			close(done)
		}
	}()
	path := gateway.TraceSocket(gateway.Config{Queue: qc})
	if err := trace.Attach(path, f, env.stdout, done); err != nil {
		fmt.Fprintf(env.stderr, "sekisho trace: %v\n", err)
		return exitFinding
	}
	return exitOK
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
