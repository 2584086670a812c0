package main

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// idleResult is the memory of the server while it holds connections that
// were greeted and then say nothing.
type idleResult struct {
	Requested  int     `json:"requested"`
	Held       int     `json:"held"`
	Failed     int     `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	Before     memory  `json:"before"`
	Holding    memory  `json:"holding"`
	PerConnKiB float64 `json:"per_connection_kib"`
}

// holdIdle opens n connections to target, reads each greeting, keeps them
// all open for hold while it samples the memory of pid's process tree,
// and closes them.
func holdIdle(target string, n int, hold time.Duration, pid int) idleResult {
	res := idleResult{Requested: n}
	if pid > 0 {
		res.Before = treeMemory("/proc", pid)
	}
	conns := make([]net.Conn, n)
	var next, failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				c, err := greeted(target)
				if err != nil {
					mu.Lock()
					failed++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	res.Failed = failed
	res.Held = n - failed
	if pid > 0 {
		s := sampleMemory(pid, 250*time.Millisecond)
		time.Sleep(hold)
		res.Holding = s.Stop()
		if res.Held > 0 {
			res.PerConnKiB = float64(res.Holding.RSSKiB-res.Before.RSSKiB) / float64(res.Held)
		}
	} else {
		time.Sleep(hold)
	}
	return res
}

// greeted connects and waits for the 220 greeting.
func greeted(target string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", target, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err == nil && !strings.HasPrefix(line, "220") {
		err = &greetingError{strings.TrimSpace(line)}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

type greetingError struct{ line string }

func (e *greetingError) Error() string { return "greeting: " + e.line }

// raiseFileLimit lifts the soft limit on open files to the hard limit, for
// this process and the gateway it starts: 10,000 connections need 10,000
// descriptors on each side.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}
