package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
)

const (
	prSetTimerSlack = 29 // PR_SET_TIMERSLACK
	prGetTimerSlack = 30 // PR_GET_TIMERSLACK
)

// withTimerSlack makes the gateway run with at least slack of timer slack,
// executing itself again when it has less. While the gateway is busy the
// Go runtime's short sleeps come by the thousand each second: its monitor
// thread (sysmon) sleeps 20 µs at a time, and a thread about to steal
// another's next goroutine first sleeps 3 µs to let that thread run it.
// Each is a wakeup and two context switches. Slack lets the kernel stretch
// and coalesce them: fewer wakeups, and fewer goroutines moved between
// threads. The gateway's own timers are timeouts of seconds, and network
// and disk events wake it as before. Measured with sekisho-bench (10
// clients, a new connection per message): half a millisecond takes 5 to
// 9 % off the CPU per message, 2 ms another 5 to 8 %, with the same
// throughput and the same p99 latency at 50 clients; 5 ms took a little
// more but lets a thread sit out a steal for as long, so 2 ms it is.
// A thread inherits its slack from the thread that starts it, and the
// runtime starts sysmon before any Go code runs, so only a slack set
// before the program starts reaches it: hence the second execution
// (systemd's TimerSlackNSec= does the same from outside). It returns when
// nothing needs doing or the execution fails; on success it does not
// return.
func withTimerSlack(slack time.Duration, stderr io.Writer) {
	if slack <= 0 {
		return
	}
	if cur, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0); errno != 0 || time.Duration(cur) >= slack {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	// The new program's first thread is the one that calls execve: set
	// the slack on that very thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(slack), 0); errno != 0 {
		return
	}
	err = syscall.Exec(exe, os.Args, os.Environ())
	fmt.Fprintf(stderr, "sekisho: could not execute %s again with --timer-slack %v (%v); running without it (--timer-slack 0 skips this)\n", exe, slack, err)
}
