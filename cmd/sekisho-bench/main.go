// Command sekisho-bench is the load tool for sekisho: it sends N messages
// of a given size with C concurrent clients to an SMTP server, runs its own
// counting SMTP sink as the server's next hop on loopback, and reports
// ingest and end-to-end messages per second, accept latency percentiles,
// errors and the server's memory. It starts sekisho itself with a
// generated configuration, or measures a running server (--target), such as
// a Postfix configured to relay to the sink (scripts/bench-vs-postfix.sh).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"
)

// result is one run, as printed and as written by --json.
type result struct {
	Name        string         `json:"name"`
	Target      string         `json:"target"`
	Messages    int            `json:"messages"`
	Concurrency int            `json:"concurrency"`
	Size        int            `json:"size"`
	Reuse       bool           `json:"reuse"`
	Accepted    int            `json:"accepted"`
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors"`
	IngestSecs  float64        `json:"ingest_seconds"`
	IngestRate  float64        `json:"ingest_per_second"`
	Delivered   int            `json:"delivered"`
	Missing     int            `json:"missing"`
	Duplicates  int            `json:"duplicates"`
	Unrewritten int            `json:"unrewritten"`
	Foreign     int            `json:"foreign"`
	E2ESecs     float64        `json:"end_to_end_seconds"`
	E2ERate     float64        `json:"end_to_end_per_second"`
	P50Ms       float64        `json:"p50_ms"`
	P99Ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	Memory      memory         `json:"peak_memory"`
	// CPU seconds used by the server's process tree and by this tool
	// (clients and sink) during the load and the drain.
	ServerCPU float64     `json:"server_cpu_seconds"`
	BenchCPU  float64     `json:"bench_cpu_seconds"`
	Idle      *idleResult `json:"idle,omitempty"`
	// Ceiling is this tool's own limit for the same load, measured in the
	// same run: every figure above is read against it.
	Ceiling *ceiling `json:"bench_ceiling,omitempty"`
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "compare":
			os.Exit(runCompare(os.Stdout, os.Stderr, os.Args[2:]))
		case "report":
			os.Exit(runReport(os.Stdout, os.Stderr, os.Args[2:]))
		}
	}
	os.Exit(runBench(os.Stdout, os.Stderr, os.Args[1:]))
}

func runBench(stdout, stderr io.Writer, args []string) int {
	fs := flag.NewFlagSet("sekisho-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: sekisho-bench [options]
       sekisho-bench compare A.json[,A2.json...] B.json[,B2.json...]
       sekisho-bench report RUN.json...

Sends --messages messages of --size bytes with --concurrency clients and
measures the server. Without --target it starts --sekisho with a generated
configuration (the relay domain's --recipients accounts mirrored, the
regional sender rewritten to the LG domain, every route to the sink). With
--target it measures a running server whose next hop for the relay domain
is --sink. Everything stays on loopback.

options:
`)
		fs.PrintDefaults()
	}
	name := fs.String("name", "sekisho", "label of this run in reports")
	messages := fs.Int("messages", 10000, "messages to send")
	concurrency := fs.Int("concurrency", 10, "concurrent clients")
	size := fs.Int("size", 2048, "message size in bytes")
	reuse := fs.Bool("reuse", false, "send every message of a client on one connection (default: a new connection per message)")
	target := fs.String("target", "", "host:port of a running server to measure (default: start sekisho)")
	bin := fs.String("sekisho", "", "the sekisho binary to start (default: sekisho next to this program, else in PATH)")
	sinkAddr := fs.String("sink", "127.0.0.1:0", "listen address of the counting sink (the next hop)")
	recipients := fs.Int("recipients", 10000, "valid accounts in the relay domain")
	lgDomain := fs.String("domain", "city.bench.lg.jp", "the relay (LG) domain")
	regional := fs.String("regional", "city.bench.aichi.jp", "the regional domain senders are rewritten from")
	memPID := fs.Int("mem-pid", 0, "with --target: measure the memory of this process and its descendants")
	idle := fs.Int("idle", 0, "after the load, hold this many idle connections and measure memory")
	hold := fs.Duration("hold", 5*time.Second, "how long to hold the idle connections")
	drain := fs.Duration("drain", 3*time.Minute, "how long to wait for accepted messages to reach the sink")
	timeout := fs.Duration("timeout", time.Minute, "per-command timeout of the clients")
	workdir := fs.String("workdir", "", "folder for the generated configuration, accounts, queue and log (default: a temporary folder, removed)")
	jsonOut := fs.String("json", "", "also write the result as JSON to this `file`")
	withConsole := fs.Bool("console", false, "start sekisho with the console, the store and the message trace on (to measure what they cost)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this tool (clients and sink) to `file`")
	ceilingMessages := fs.Int("ceiling", 2000, "first send this many messages (at most --messages) straight to a sink of this tool's own, and report that one-hop rate as the tool's ceiling; 0: skip")
	serverProfile := fs.String("server-cpuprofile", "", "without --target: have sekisho write a CPU profile of the run to `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "sekisho-bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 || *messages < 0 || *concurrency < 1 || *size < 1 || *recipients < 1 {
		fs.Usage()
		return 2
	}
	if _, err := raiseFileLimit(); err != nil {
		fmt.Fprintln(stderr, "sekisho-bench: raising the open file limit:", err)
	}
	j := job{runID: newRunID(), lgDomain: *lgDomain, regional: *regional, recipients: *recipients}
	sk, err := startSink(*sinkAddr, j)
	if err != nil {
		fmt.Fprintln(stderr, "sekisho-bench: sink:", err)
		return 1
	}
	defer sk.Close()

	addr, pid := *target, *memPID
	var gw *gateway
	if addr == "" {
		path, err := sekishoBinary(*bin)
		if err != nil {
			fmt.Fprintln(stderr, "sekisho-bench:", err)
			return 2
		}
		dir := *workdir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "sekisho-bench-"); err != nil {
				fmt.Fprintln(stderr, "sekisho-bench:", err)
				return 1
			}
			defer os.RemoveAll(dir)
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(stderr, "sekisho-bench:", err)
			return 1
		}
		gw, err = startGateway(path, dir, sk.Addr(), j, max(1000, *idle+2**concurrency+100), *withConsole, *serverProfile)
		if err != nil {
			fmt.Fprintln(stderr, "sekisho-bench:", err)
			return 1
		}
		addr, pid = gw.addr, gw.PID()
	}

	opts := loadOptions{target: addr, messages: *messages, concurrency: *concurrency, size: *size,
		reuse: *reuse, timeout: *timeout}
	var ceil *ceiling
	if *messages > 0 && *ceilingMessages > 0 {
		c := measureCeiling(opts, j, *ceilingMessages)
		ceil = &c
	}
	r := measure(opts, j, sk, pid, *drain)
	r.Name, r.Target, r.Ceiling = *name, addr, ceil
	if *idle > 0 {
		ir := holdIdle(addr, *idle, *hold, pid)
		r.Idle = &ir
	}
	status := 0
	if gw != nil {
		if err := gw.Stop(); err != nil {
			fmt.Fprintln(stderr, "sekisho-bench: stopping sekisho:", err)
			status = 1
		}
	}
	printResult(stdout, r)
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "sekisho-bench:", err)
			return 1
		}
	}
	if r.Failed > 0 || r.Missing > 0 || r.Duplicates > 0 || r.Unrewritten > 0 || (r.Idle != nil && r.Idle.Failed > 0) {
		status = 1
	}
	return status
}

// measure runs the load, waits for the sink to receive what was accepted,
// and computes the figures.
func measure(opts loadOptions, j job, sk *sink, pid int, drain time.Duration) result {
	mem := sampleMemory(pid, 250*time.Millisecond)
	cpu0, self0 := treeCPU("/proc", pid), selfCPU()
	lr := runLoad(opts, j)
	sk.waitFor(lr.accepted, time.Now().Add(drain))
	cpu1, self1 := treeCPU("/proc", pid), selfCPU()
	r := result{Messages: opts.messages, Concurrency: opts.concurrency, Size: opts.size, Reuse: opts.reuse,
		Accepted: lr.accepted, Failed: lr.failed, Errors: lr.errors}
	r.Memory = mem.Stop()
	if pid > 0 {
		r.ServerCPU = float64(cpu1-cpu0) / clockTicks
	}
	r.BenchCPU = (self1 - self0).Seconds()
	if lr.accepted > 0 {
		r.IngestSecs = lr.lastOK.Sub(lr.start).Seconds()
		r.IngestRate = rate(lr.accepted, r.IngestSecs)
	}
	var last time.Time
	r.Delivered, r.Duplicates, r.Unrewritten, r.Foreign, last = sk.counts()
	r.Missing = max(lr.accepted-r.Delivered, 0)
	if r.Delivered > 0 {
		r.E2ESecs = last.Sub(lr.start).Seconds()
		r.E2ERate = rate(r.Delivered, r.E2ESecs)
	}
	sortDurations(lr.latencies)
	r.P50Ms = ms(percentile(lr.latencies, 50))
	r.P99Ms = ms(percentile(lr.latencies, 99))
	r.MaxMs = ms(percentile(lr.latencies, 100))
	return r
}

func rate(n int, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sekishoBinary finds the binary to start.
func sekishoBinary(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "sekisho")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("sekisho")
	if err != nil {
		return "", fmt.Errorf("no sekisho binary: build one (go build -o bin/ ./cmd/sekisho) and pass --sekisho, or give --target")
	}
	return filepath.Abs(p)
}

// selfCPU is the user and system time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newRunID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
