package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/relay/console"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/ops/logsink"
)

func init() {
	register(&command{name: "serve", summary: "run the gateway (the embedded quickstart without -c)", run: runServe})
}

// minProcs is the least GOMAXPROCS serve runs with (see runServe).
const minProcs = 4

func (c *Config) sections() gateway.Sections {
	return gateway.Sections{Accounts: c.Accounts, Rewrite: c.Rewrite, Routing: c.Routing, Relay: c.Relay, ConsoleURL: c.Console.URL}
}

func runServe(env *cmdEnv, args []string) int {
	fs := newFlags(env, "serve", "[[-c] FILE] [--listen ADDR]", `
Runs the gateway: the SMTP listeners, the queue and delivery. Without -c it
runs the embedded quickstart (127.0.0.1:2525, demo domain, delivery into
./sekisho-quickstart/, the console on http://127.0.0.1:8025/).
Signals: SIGHUP reloads the configuration, accounts, rewrite tables and
routes (a broken configuration is refused and the running one kept);
SIGUSR1 reopens the log files; SIGTERM or SIGINT stop accepting, let open
sessions finish (up to --grace), and exit.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	grace := fs.Duration("grace", 30*time.Second, "how long open sessions may finish on shutdown")
	listen := fs.String("listen", "", "listen on `host:port` instead of the first listener's address")
	consoleAt := fs.String("console", "", "serve the console on `host:port` instead of its first listener's address")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file` until shutdown (for performance work)")
	slack := fs.Duration("timer-slack", 2*time.Millisecond, "run with at least this much timer slack (Linux; fewer wakeups of the Go runtime; 0 keeps the system's)")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if *cfgPath, st = configArg(env, "serve", *cfgPath, pos); st >= 0 {
		return st
	}
	if env.process {
		withTimerSlack(*slack, env.stderr)
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	if err := overrideListen(cfg, *listen); err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	if err := overrideConsole(cfg, *consoleAt); err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	if err := checkAddresses(cfg.Relay, cfg.Console); err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	// Everything that can refuse the configuration before anything is
	// created: the log files, the queue folder.
	if err := gateway.Preflight(cfg.sections()); err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	// Signals before the first connection is accepted: a SIGHUP or
	// SIGTERM sent as soon as the listeners answer waits in the channel
	// instead of killing the process (their default action).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		// The spool's fdatasync and file reads block an OS thread; with
		// one or two Ps everything else waits until the runtime takes the
		// P back. Measured on one CPU: 1,020 against 2,923 msg/s at 50
		// clients.
		runtime.GOMAXPROCS(minProcs)
	}
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tens of MiB) and turns over fast: a
		// less eager collector costs a few MiB and saves CPU per message.
		debug.SetGCPercent(400)
	}
	sink, err := newLogSink(cfg.Relay.Log, env.stderr)
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: relay.log: %v\n", cfg.Source, err)
		return exitFinding
	}
	defer sink.Close()
	log := slog.New(sink.Handler())

	metrics := ops.NewMetrics()
	eng, err := gateway.New(cfg.sections(), log, metrics)
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		eng.Shutdown(ctx)
		return exitFinding
	}
	if a := cfg.Relay.Metrics.Address; a != "" {
		if err := ops.ServeMetrics(ctx, a, metrics, eng.Healthy); err != nil {
			fmt.Fprintf(env.stderr, "relay.metrics.address: %v\n", err)
			eng.Shutdown(ctx)
			return exitFinding
		}
	}
	var con *console.Server
	if cfg.Console.On() {
		path := *cfgPath
		con, err = console.New(cfg.Console, eng, console.Options{Config: func() console.ConfigReport { return consoleConfigReport(path) }})
		if err == nil {
			err = con.Start()
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
			eng.Shutdown(ctx)
			return exitFinding
		}
		if *cfgPath == "" {
			fmt.Fprintf(env.stderr, "console: http://%s/ (sign in as suzuki@city.example.lg.jp with quickstart-admin, or tanaka@city.example.lg.jp with quickstart-staff)\n",
				con.Addrs()[0])
		}
	}
	// What config check would warn of, said where the operator looks
	// when mail goes wrong.
	for _, w := range cfg.Relay.Warnings() {
		log.Warn("relay."+w, "kind", "start", "config", cfg.Source)
	}
	for _, w := range eng.Warnings() {
		log.Warn(w.String(), "kind", "start", "config", cfg.Source)
	}
	for i, a := range eng.Addrs() {
		log.Info("listening", "kind", "start", "address", a.String(), "mode", cfg.Relay.Listeners[i].Mode, "config", cfg.Source)
	}

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			next, err := loadConfig(*cfgPath)
			if err == nil {
				err = overrideListen(next, *listen)
			}
			if err == nil {
				err = eng.Reload(next.sections())
			}
			if err != nil {
				log.Error("reload refused; the running configuration stays", "kind", "reload", "error", err)
				continue
			}
		case syscall.SIGUSR1:
			if err := sink.Reopen(); err != nil {
				log.Error("reopening the log files", "kind", "reload", "error", err)
			}
		default:
			log.Info("shutting down", "kind", "stop", "signal", sig.String(), "grace", grace.String())
			sctx, scancel := context.WithTimeout(context.Background(), *grace)
			if con != nil {
				con.Shutdown(sctx)
			}
			err := eng.Shutdown(sctx)
			scancel()
			if err != nil {
				log.Error("shutdown", "kind", "stop", "error", err)
				return exitFinding
			}
			return exitOK
		}
	}
	return exitOK
}

// newLogSink opens the main log stream and the per-kind outputs of
// relay.log.
func newLogSink(c logsink.Config, stderr io.Writer) (*logsink.Sink, error) {
	return logsink.New(logsink.Options{File: c.File, Format: c.Format, Level: c.Level, Outputs: c.Outputs, Stderr: stderr})
}

// overrideListen puts --listen ADDR in place of the first listener's
// address (a quickstart on another port without writing a file), and
// validates the result again.
func overrideListen(cfg *Config, addr string) error {
	if addr == "" {
		return nil
	}
	if len(cfg.Relay.Listeners) == 0 {
		cfg.Relay.Listeners = []gateway.ListenerConfig{{Mode: "mx"}}
	}
	cfg.Relay.Listeners[0].Address = addr
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("--listen %s: %w", addr, err)
	}
	return nil
}

// overrideConsole puts --console ADDR in place of the first console
// listener's address (a quickstart beside another one).
func overrideConsole(cfg *Config, addr string) error {
	if addr == "" {
		return nil
	}
	if !cfg.Console.On() {
		return fmt.Errorf("--console %s: the configuration has no console (console.listeners)", addr)
	}
	cfg.Console.Listeners[0].Address = addr
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("--console %s: %w", addr, err)
	}
	return nil
}

// checkAddresses binds every listener address, the metrics address and
// the console's, and lets them go again, so that a port in use or a
// privileged port is refused before the queue folder is created.
func checkAddresses(c gateway.Config, cc console.Config) error {
	try := func(key, addr string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return ln.Close()
	}
	for i, l := range c.Listeners {
		if err := try(fmt.Sprintf("relay.listeners[%d].address", i), l.Address); err != nil {
			return err
		}
	}
	for i, l := range cc.Listeners {
		if err := try(fmt.Sprintf("console.listeners[%d].address", i), l.Address); err != nil {
			return err
		}
	}
	if c.Metrics.Address != "" {
		return try("relay.metrics.address", c.Metrics.Address)
	}
	return nil
}
