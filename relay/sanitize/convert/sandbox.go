package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Every converter runs as a process of its own: in a process group of its
// own (killed whole when it overruns: LibreOffice's launcher starts
// soffice.bin as a child), under prlimit's RLIMIT_CPU, RLIMIT_AS,
// RLIMIT_FSIZE and no core files, at a lower CPU priority, in a network
// namespace with nothing but a loopback that is down (so a document
// cannot fetch anything), with a folder of its own as its home and
// working folder, and an environment of our choosing.

// Codes say why a conversion failed, for a program (the sanitize report's
// Code); the Error's text says it for a person.
const (
	CodeTimeout  = "convert-timeout"   // stopped at its CPU time limit
	CodeFailed   = "convert-failed"    // the converter failed or wrote nothing usable
	CodeTooLarge = "convert-too-large" // over the page, pixel or size limit
	CodePassword = "wrong-password"    // the archive's password was not the one given
)

// Error is a conversion that did not succeed.
type Error struct {
	Code   string
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func failed(code, format string, a ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, a...)}
}

// outputCap bounds what a converter's stdout and stderr are kept to.
const outputCap = 64 << 10

// job is one process to run.
type job struct {
	name  string   // what it is, for errors ("LibreOffice")
	prog  string   // Config's program
	args  []string // after the program
	dir   string   // its working folder and HOME
	stdin io.Reader
}

// ErrBusy: a conversion ran past the clock's backstop (wall_timeout)
// without using up its CPU time. That says more about the machine than
// about the document, so it is not a conversion's failure (no *Error):
// the message waits for a retry.
var ErrBusy = errors.New("the converter did not finish in time on a busy machine")

// run runs j under the limits and returns its stdout. ctx carries the
// conversion's deadline by the clock (Converter.slot): when it passes, the
// process group is killed and run returns ErrBusy. A converter that uses
// up its CPU time is stopped by the kernel and run returns CodeTimeout.
func (c *Converter) run(ctx context.Context, j job) ([]byte, error) {
	prog, err := exec.LookPath(j.prog)
	if err != nil {
		return nil, failed(CodeFailed, "%s is not installed (%s)", j.name, j.prog)
	}
	prl, err := exec.LookPath(c.cfg.Prlimit)
	if err != nil {
		return nil, failed(CodeFailed, "prlimit is not installed (%s): converters cannot be bounded", c.cfg.Prlimit)
	}
	// RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL a second later for
	// a converter that catches it (LibreOffice has crash handlers).
	cpu := cpuSeconds(c.cfg.Timeout)
	args := []string{fmt.Sprintf("--cpu=%d:%d", cpu, cpu+1), fmt.Sprintf("--as=%d", int64(c.cfg.MaxMemory)),
		fmt.Sprintf("--fsize=%d", int64(c.cfg.MaxOutput)), "--core=0", "--"}
	// Converters run at a lower CPU priority, so that mail needing no
	// conversion keeps its pace on a busy machine; nice (coreutils) sets
	// it before the converter starts, so every process it forks has it.
	if nice, err := exec.LookPath("nice"); err == nil && c.cfg.Nice > 0 {
		args = append(args, nice, "-n", strconv.Itoa(c.cfg.Nice))
	}
	args = append(args, prog)
	args = append(args, j.args...)
	isolate := c.cfg.Network == NetworkIsolate || c.cfg.Network == NetworkAuto && !c.noNamespace.Load()
	out, err := c.start(ctx, prl, args, j, isolate)
	if isolate && c.cfg.Network == NetworkAuto && errors.Is(err, errNoNamespace) {
		if c.noNamespace.CompareAndSwap(false, true) && c.Warn != nil {
			c.Warn("converters run without a network namespace of their own: the system refused one (relay.sanitize.convert.network: auto)")
		}
		out, err = c.start(ctx, prl, args, j, false)
	}
	return out, err
}

var errNoNamespace = errors.New("no network namespace")

func (c *Converter) start(ctx context.Context, prl string, args []string, j job, isolate bool) ([]byte, error) {
	cmd := exec.Command(prl, args...)
	cmd.Dir = j.dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + j.dir, "TMPDIR=" + j.dir, "LANG=C.UTF-8",
		"SAL_USE_VCLPLUGIN=svp"}
	cmd.Stdin = j.stdin
	var stdout, stderr capped
	stdout.max, stderr.max = outputCap, outputCap // only pdfinfo's few lines are read from stdout
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = sysProcAttr(isolate)
	if err := cmd.Start(); err != nil {
		if isolate && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) ||
			errors.Is(err, syscall.EACCES)) {
			if c.cfg.Network == NetworkIsolate {
				return nil, failed(CodeFailed, "%s: the system refused a network namespace (relay.sanitize.convert.network: isolate): %v", j.name, err)
			}
			return nil, errNoNamespace
		}
		return nil, failed(CodeFailed, "%s could not be started: %v", j.name, err)
	}
	pgid := cmd.Process.Pid
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			syscall.Kill(-pgid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	// Whatever the leader left behind in its group goes with it.
	syscall.Kill(-pgid, syscall.SIGKILL)
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s ran for %v without finishing and was stopped: %w", j.name, c.cfg.WallTimeout, ErrBusy)
		}
		return nil, ctx.Err()
	}
	if err != nil && overCPU(cmd.ProcessState, c.cfg.Timeout) {
		return nil, failed(CodeTimeout, "%s used more than %v of CPU time and was stopped", j.name, c.cfg.Timeout)
	}
	if err != nil {
		return stdout.Bytes(), failed(CodeFailed, "%s failed (%v)%s", j.name, err, lastLine(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// cpuSeconds is d in whole seconds, rounded up: RLIMIT_CPU counts
// seconds.
func cpuSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// overCPU says whether a converter that failed was stopped at its CPU
// time: the kernel's SIGXCPU (or its SIGKILL a second later) ended it, or
// a process beneath it, and the time it used says so. A tenth below the
// limit allows for how rusage rounds.
func overCPU(ps *os.ProcessState, limit time.Duration) bool {
	if ps == nil {
		return false
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGXCPU {
		return true
	}
	return usedCPU(ps) >= time.Duration(cpuSeconds(limit))*time.Second*9/10
}

// usedCPU is the CPU time a finished converter used, with every process
// beneath it that it waited for (LibreOffice's launcher waits for
// soffice.bin).
func usedCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// lastLine is the last line a converter wrote to stderr, for the reason.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.Contains(l, "javaldx") {
			if len(l) > 200 {
				l = l[:200]
			}
			return ": " + l
		}
	}
	return ""
}

// capped keeps the first max bytes written and discards the rest.
type capped struct {
	bytes.Buffer
	max int
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.max - w.Len(); room < len(p) {
		if room > 0 {
			w.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return w.Buffer.Write(p)
}

// sysProcAttr puts the converter in a process group of its own, killed
// if we die, and, when isolate, in a new network namespace: as root
// directly, otherwise inside a user namespace mapping only our own IDs.
func sysProcAttr(isolate bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if !isolate {
		return a
	}
	a.Cloneflags = syscall.CLONE_NEWNET
	if uid := os.Getuid(); uid != 0 {
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// jobDir makes a fresh folder for one conversion.
func (c *Converter) jobDir() (string, func(), error) {
	if c.cfg.TempDir != "" {
		if err := os.MkdirAll(c.cfg.TempDir, 0o700); err != nil {
			return "", nil, fmt.Errorf("a folder for the conversion: %w", err)
		}
	}
	d, err := os.MkdirTemp(c.cfg.TempDir, "sekisho-convert-*")
	if err != nil {
		return "", nil, fmt.Errorf("a folder for the conversion: %w", err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}
