package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memory is the resident memory of a process tree, in KiB. PSS divides
// each shared page among the processes that map it, so the PSS of a tree
// is what the tree costs the machine; RSS counts shared pages once per
// process.
type memory struct {
	RSSKiB    int64 `json:"rss_kib"`
	PSSKiB    int64 `json:"pss_kib"`
	Processes int   `json:"processes"`
}

// treeMemory sums smaps_rollup over root and all its descendants (Postfix
// is a master with many children; sekisho is one process).
func treeMemory(procDir string, root int) memory {
	var m memory
	for _, pid := range processTree(procDir, root) {
		data, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "smaps_rollup"))
		if err != nil {
			continue // the process ended meanwhile
		}
		rss, pss := parseRollup(data)
		m.RSSKiB += rss
		m.PSSKiB += pss
		m.Processes++
	}
	return m
}

// parseRollup reads the Rss and Pss lines (in kB) of /proc/PID/smaps_rollup.
func parseRollup(data []byte) (rss, pss int64) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss
}

// processTree lists root and its descendants, from the parent field of
// /proc/PID/stat.
func processTree(procDir string, root int) []int {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(data); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// parentPID reads the fourth field of /proc/PID/stat; the second, the
// command name in parentheses, may itself hold spaces and parentheses.
func parentPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// treeCPU returns the CPU time, in clock ticks, used by root's process
// tree: each live process's own time plus the time of the children it
// has reaped (Postfix's master reaps its short-lived smtpd processes).
func treeCPU(procDir string, root int) int64 {
	var ticks int64
	for _, pid := range processTree(procDir, root) {
		data, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		ticks += statCPU(data)
	}
	return ticks
}

// statCPU sums utime, stime, cutime and cstime (fields 14 to 17) of a
// /proc/PID/stat line.
func statCPU(stat []byte) int64 {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 15 {
		return 0
	}
	var sum int64
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(s, 10, 64)
		sum += n
	}
	return sum
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// sampler records the peak memory of a process tree while a run lasts.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak memory
}

// sampleMemory starts sampling root's tree every interval; root <= 0
// samples nothing.
func sampleMemory(root int, interval time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if root <= 0 {
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.take(root)
			select {
			case <-s.stop:
				s.take(root)
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) take(root int) {
	m := treeMemory("/proc", root)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.PSSKiB > s.peak.PSSKiB {
		s.peak.PSSKiB = m.PSSKiB
	}
	if m.RSSKiB > s.peak.RSSKiB {
		s.peak.RSSKiB = m.RSSKiB
	}
	s.peak.Processes = max(s.peak.Processes, m.Processes)
}

// Stop ends sampling and returns the peaks.
func (s *sampler) Stop() memory {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
