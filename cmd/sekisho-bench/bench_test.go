package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
	} {
		if got := percentile(c.in, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
		}
	}
}

func TestProcFiles(t *testing.T) {
	rss, pss := parseRollup([]byte("55d0e0a00000-7ffd5f9f1000 ---p 00000000 00:00 0 [rollup]\nRss:               27236 kB\nPss:               26001 kB\nPss_Anon:  1 kB\n"))
	if rss != 27236 || pss != 26001 {
		t.Errorf("parseRollup = %d, %d", rss, pss)
	}
	stat := []byte("4242 (smtpd (x) y) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 30 7 3 20 0 1 0 5 0 0\n")
	if ppid, ok := parentPID(stat); !ok || ppid != 17 {
		t.Errorf("parentPID = %d, %v", ppid, ok)
	}
	if got := statCPU(stat); got != 290 {
		t.Errorf("statCPU = %d, want 250+30+7+3", got)
	}
	if _, ok := parentPID([]byte("garbage")); ok {
		t.Error("parentPID accepted a line without a command name")
	}

	// A fake /proc: 10 -> 11 -> 13, 10 -> 12; 20 is another tree.
	dir := t.TempDir()
	for pid, ppid := range map[int]int{10: 1, 11: 10, 12: 10, 13: 11, 20: 1} {
		p := filepath.Join(dir, fmt.Sprint(pid))
		os.Mkdir(p, 0o755)
		os.WriteFile(filepath.Join(p, "stat"), []byte(fmt.Sprintf("%d (x) S %d 0 0 0 0 0 0 0 0 0 %d 1 0 0\n", pid, ppid, pid)), 0o644)
		os.WriteFile(filepath.Join(p, "smaps_rollup"), []byte(fmt.Sprintf("Rss: %d kB\nPss: %d kB\n", pid*10, pid)), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "self"), 0o755)
	m := treeMemory(dir, 10)
	if m.Processes != 4 || m.RSSKiB != 460 || m.PSSKiB != 46 {
		t.Errorf("treeMemory = %+v, want 4 processes, RSS 460, PSS 46", m)
	}
	if got := treeCPU(dir, 11); got != 11+1+13+1 {
		t.Errorf("treeCPU = %d", got)
	}
}

func TestMessageAndJob(t *testing.T) {
	j := job{runID: "r1", lgDomain: "city.bench.lg.jp", regional: "city.bench.aichi.jp", recipients: 3}
	if got := j.recipient(0); got != "user00001@city.bench.lg.jp" {
		t.Errorf("recipient(0) = %s", got)
	}
	if got := j.recipient(3); got != "user00001@city.bench.lg.jp" {
		t.Errorf("recipient(3) = %s: recipients wrap around", got)
	}
	for _, size := range []int{1024, 2048, 65536} {
		data := dataBody(bodyFor(size))
		if !bytes.HasSuffix(data, []byte("\r\n.\r\n")) {
			t.Errorf("size %d: the body does not end with the final dot", size)
		}
		msg := append(j.header(nil, 5, "Mon, 7 Dec 2026 00:00:00 +0900"), data[:len(data)-3]...)
		if d := len(msg) - size; d < -100 || d > 100 {
			t.Errorf("size %d: message is %d bytes", size, len(msg))
		}
		if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("size %d: bare LF in the message", size)
		}
		if !bytes.Contains(msg, []byte("X-Bench-Seq: 5\r\n")) || !bytes.Contains(msg, []byte("Cc: <user00001@city.bench.aichi.jp>")) {
			t.Errorf("size %d: header:\n%s", size, msg[:400])
		}
	}
}

func FuzzParsers(f *testing.F) {
	f.Add([]byte("Rss: 10 kB\nPss: 5 kB\n"))
	f.Add([]byte("1 (a) b) S 0 0 0 0 0 0 0 0 0 0 1 2 3 4\n"))
	f.Add([]byte("From: <sender@city.bench.lg.jp>\r\nCc: <a@city.bench.lg.jp>\r\nX-Bench-Run: r\r\nX-Bench-Seq: 7\r\n\r\nbody"))
	f.Add([]byte("X-Bench-Seq: -3\r\nX-Bench-Run: other\r\n"))
	j := job{runID: "r", lgDomain: "city.bench.lg.jp", regional: "city.bench.aichi.jp", recipients: 1}
	f.Fuzz(func(t *testing.T, data []byte) {
		parseRollup(data)
		parentPID(data)
		statCPU(data)
		seq, _ := scanHeader(bufio.NewReader(bytes.NewReader(data)), j, "sender@city.bench.lg.jp")
		if seq < -1 {
			t.Fatalf("sequence %d", seq)
		}
	})
}

func TestErrorKey(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&replyError{code: 550, text: "5.1.1 no such account user00042@x here at all today"}, "550 5.1.1 no such account user00042@x here at"},
		{&net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}, "dial: connect: connection refused"},
		{errors.New("EOF"), "EOF"},
	} {
		if got := errorKey(c.err); got != c.want {
			t.Errorf("errorKey(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// send delivers one message to the sink as the server under test would.
func send(t *testing.T, addr, from, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail(from, []string{"user00001@city.bench.lg.jp"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestSinkCountsAndChecks(t *testing.T) {
	j := job{runID: "run1", lgDomain: "city.bench.lg.jp", regional: "city.bench.aichi.jp", recipients: 10}
	sk, err := startSink("127.0.0.1:0", j)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	header := func(run string, seq int, from, cc string) string {
		return fmt.Sprintf("From: S <%s>\r\nCc: <%s>\r\nX-Bench-Run: %s\r\nX-Bench-Seq: %d\r\n\r\nbody\r\n", from, cc, run, seq)
	}
	lg, regional := "sender@city.bench.lg.jp", "sender@city.bench.aichi.jp"
	send(t, sk.Addr(), lg, header("run1", 0, lg, "a@city.bench.lg.jp"))       // done right
	send(t, sk.Addr(), lg, header("run1", 0, lg, "a@city.bench.lg.jp"))       // a duplicate
	send(t, sk.Addr(), regional, header("run1", 1, lg, "a@city.bench.lg.jp")) // envelope not rewritten
	send(t, sk.Addr(), lg, header("run1", 2, regional, "a@city.bench.lg.jp")) // From not rewritten
	send(t, sk.Addr(), lg, header("run1", 3, lg, "a@city.bench.aichi.jp"))    // Cc not rewritten
	send(t, sk.Addr(), lg, header("other", 4, lg, "a@city.bench.lg.jp"))      // another run
	send(t, sk.Addr(), "", "Subject: a bounce\r\n\r\nbody\r\n")               // no sequence
	sk.waitFor(4, time.Now().Add(5*time.Second))
	delivered, dup, unrewritten, foreign, last := sk.counts()
	if delivered != 4 || dup != 1 || unrewritten != 3 || foreign != 2 || last.IsZero() {
		t.Errorf("delivered %d, duplicates %d, unrewritten %d, foreign %d, last %v; want 4, 1, 3, 2",
			delivered, dup, unrewritten, foreign, last)
	}
}

// The load runs against the sink itself standing in for a server: every
// message is accepted and arrives, and since nothing rewrites them, every
// one is reported as not rewritten.
func TestLoadAgainstSink(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) {
			j := job{runID: newRunID(), lgDomain: "city.bench.lg.jp", regional: "city.bench.aichi.jp", recipients: 50}
			sk, err := startSink("127.0.0.1:0", j)
			if err != nil {
				t.Fatal(err)
			}
			defer sk.Close()
			r := measure(loadOptions{target: sk.Addr(), messages: 60, concurrency: 4, size: 1024, reuse: reuse, timeout: 10 * time.Second},
				j, sk, os.Getpid(), 10*time.Second)
			if r.Accepted != 60 || r.Failed != 0 || r.Delivered != 60 || r.Missing != 0 || r.Duplicates != 0 || r.Unrewritten != 60 {
				t.Errorf("result %+v", r)
			}
			if r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms || r.IngestRate <= 0 || r.E2ERate <= 0 {
				t.Errorf("figures: %+v", r)
			}
			if r.Memory.Processes < 1 || r.Memory.RSSKiB <= 0 {
				t.Errorf("memory of this test process not measured: %+v", r.Memory)
			}
		})
	}
}

func TestLoadCountsRefusals(t *testing.T) {
	j := job{runID: newRunID(), lgDomain: "city.bench.lg.jp", regional: "city.bench.aichi.jp", recipients: 5}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // nothing listens there now
	lr := runLoad(loadOptions{target: ln.Addr().String(), messages: 7, concurrency: 2, size: 500, timeout: time.Second}, j)
	if lr.accepted != 0 || lr.failed != 7 || len(lr.errors) != 1 {
		t.Errorf("accepted %d, failed %d, errors %v", lr.accepted, lr.failed, lr.errors)
	}
}

func TestIdleHold(t *testing.T) {
	j := job{runID: "idle", lgDomain: "city.bench.lg.jp", regional: "city.bench.aichi.jp", recipients: 1}
	sk, err := startSink("127.0.0.1:0", j)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	r := holdIdle(sk.Addr(), 30, 300*time.Millisecond, os.Getpid())
	if r.Held != 30 || r.Failed != 0 || r.Holding.RSSKiB <= 0 {
		t.Errorf("%+v", r)
	}
}

func TestCompareAndReport(t *testing.T) {
	a, err := readResult("testdata/sekisho.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := readResult("testdata/postfix.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printCompare(&out, a, b)
	assertGolden(t, "compare.txt", out.String())
	out.Reset()
	printReport(&out, []result{a, b})
	assertGolden(t, "report.md", out.String())
	out.Reset()
	printResult(&out, b)
	printResult(&out, a)
	assertGolden(t, "result.txt", out.String())
	var stderr bytes.Buffer
	if code := runCompare(&out, &stderr, []string{"testdata/sekisho.json"}); code != 2 {
		t.Errorf("compare with one file: exit %d", code)
	}
	if code := runReport(&out, &stderr, []string{"testdata/missing.json"}); code != 1 {
		t.Errorf("report of a missing file: exit %d", code)
	}
}

// The whole tool against the real gateway: build sekisho, let the bench
// start it with the generated configuration, and check that every message
// was accepted, delivered to the sink once, and rewritten.
func TestBenchStartsSekisho(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sekisho binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build sekisho with")
	}
	bin := filepath.Join(t.TempDir(), "sekisho")
	args := []string{"build", "-o", bin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, "github.com/sekisho/sekisho/cmd/sekisho")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sekisho: %v\n%s", err, out)
	}
	work := t.TempDir()
	jsonPath := filepath.Join(work, "r.json")
	var stdout, stderr bytes.Buffer
	code := runBench(&stdout, &stderr, []string{"--sekisho", bin, "--workdir", filepath.Join(work, "gw"),
		"--messages", "200", "--concurrency", "8", "--recipients", "100", "--idle", "50", "--hold", "200ms", "--json", jsonPath})
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	r, err := readResult(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 200 || r.Delivered != 200 || r.Unrewritten != 0 || r.Duplicates != 0 || r.Idle == nil || r.Idle.Held != 50 {
		t.Errorf("result %+v\n%s", r, stdout.String())
	}
	if r.Memory.Processes != 1 || r.ServerCPU <= 0 {
		t.Errorf("the gateway was not measured: %+v, cpu %v", r.Memory, r.ServerCPU)
	}
	if c := r.Ceiling; c == nil || c.Messages != 200 || c.Rate <= 0 || c.Error != "" {
		t.Errorf("the one-hop ceiling was not measured: %+v", c)
	}
	// The gateway logged each message as received and as sent.
	log, _ := os.ReadFile(filepath.Join(work, "gw", "sekisho.log"))
	if !bytes.Contains(log, []byte("kind=receive")) || !bytes.Contains(log, []byte("kind=send")) {
		t.Errorf("the gateway's log has no receive and send lines:\n%.2000s", log)
	}
}

// Several runs a side compare as their medians, figure by figure.
func TestCompareMedians(t *testing.T) {
	base, err := readResult("testdata/sekisho.json")
	if err != nil {
		t.Fatal(err)
	}
	var runs []result
	for i, f := range []float64{1, 3, 2} { // an outlier each way around the middle run
		r := base
		r.E2ERate, r.P99Ms, r.ServerCPU = base.E2ERate*f, base.P99Ms*f, base.ServerCPU*f
		r.Missing = i
		runs = append(runs, r)
	}
	m := medianResult(runs)
	if m.E2ERate != base.E2ERate*2 || m.P99Ms != base.P99Ms*2 || m.Missing != 3 {
		t.Errorf("median of three: rate %v p99 %v missing %d; want %v, %v, 3", m.E2ERate, m.P99Ms, m.Missing, base.E2ERate*2, base.P99Ms*2)
	}
	if got, want := perMessageMs(m.ServerCPU, m.Delivered), perMessageMs(base.ServerCPU*2, base.Delivered); math.Abs(got-want) > 1e-9 {
		t.Errorf("median CPU per message %v, want %v", got, want)
	}
	if two := medianResult(runs[:2]); two.E2ERate != base.E2ERate*2 {
		t.Errorf("median of two: %v, want their mean %v", two.E2ERate, base.E2ERate*2)
	}
	var out, stderr bytes.Buffer
	if code := runCompare(&out, &stderr, []string{"testdata/sekisho.json,testdata/sekisho.json", "testdata/postfix.json"}); code != 0 ||
		!strings.Contains(out.String(), "sekisho (median of 2) vs postfix") {
		t.Errorf("compare of a list: exit %d, %s%s", code, out.String(), stderr.String())
	}
}
