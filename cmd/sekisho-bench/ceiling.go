package main

import (
	"time"
)

// ceiling is the one-hop figure of a run: the same load (size,
// concurrency, connection mode) sent by this tool straight to a sink of
// its own, with no server between. It is the most the tool can send and
// count on this machine at the moment; a server figure near it says the
// tool, not the server, was the limit.
type ceiling struct {
	Messages int     `json:"messages"`
	Rate     float64 `json:"per_second"`
	// CPUms is this tool's CPU per message (clients and sink), the share
	// of the machine a measured run leaves the server.
	CPUms float64 `json:"cpu_ms_per_message"`
	Error string  `json:"error,omitempty"`
}

// measureCeiling runs min(n, opts.messages) messages of the load against a
// new sink with a run of its own.
func measureCeiling(opts loadOptions, j job, n int) ceiling {
	j.runID = newRunID()
	sk, err := startSink("127.0.0.1:0", j)
	if err != nil {
		return ceiling{Error: err.Error()}
	}
	defer sk.Close()
	opts.target, opts.messages = sk.Addr(), min(n, opts.messages)
	cpu0 := selfCPU()
	lr := runLoad(opts, j)
	sk.waitFor(lr.accepted, time.Now().Add(time.Minute))
	cpu := selfCPU() - cpu0
	delivered, _, _, _, last := sk.counts()
	c := ceiling{Messages: delivered, CPUms: perMessageMs(cpu.Seconds(), delivered)}
	if delivered > 0 {
		c.Rate = rate(delivered, last.Sub(lr.start).Seconds())
	}
	if lr.failed > 0 {
		for k := range lr.errors {
			c.Error = k
			break
		}
	}
	return c
}
