package main

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/sekisho/sekisho/relay/gateway"
)

func refused(steps []gateway.Step) bool {
	for _, s := range steps {
		if s.Refused() {
			return true
		}
	}
	return false
}

// relayTestBatch decides one JSON probe a line from standard input with
// the configuration loaded once. A line that is not a valid probe gets
// {"error": ...} and exit 2 at the end; the other lines are still decided.
func relayTestBatch(env *cmdEnv, cfgPath string) int {
	cfg, ok := env.config(cfgPath)
	if !ok {
		return exitFinding
	}
	r, err := gateway.NewDryRunner(cfg.sections())
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, err)
		return exitFinding
	}
	type result struct {
		Line  int            `json:"line"`
		Steps []gateway.Step `json:"steps,omitempty"`
		Error string         `json:"error,omitempty"`
	}
	status := exitOK
	sc := bufio.NewScanner(env.stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(env.stdout)
	enc := json.NewEncoder(out)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var in gateway.ProbeInput
		res := result{Line: n}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			res.Error = "not a JSON probe: " + err.Error()
		} else if p, msg := in.Probe(); msg != "" {
			res.Error = msg
		} else {
			res.Steps = r.Run(p)
			if refused(res.Steps) && status == exitOK {
				status = exitFinding
			}
		}
		if res.Error != "" {
			fmt.Fprintf(env.stderr, "relay test: line %d: %s\n", n, res.Error)
			status = exitUsage
		}
		enc.Encode(res)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(env.stderr, "relay test: standard input: %v\n", err)
		status = exitUsage
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(env.stderr, "relay test: %v\n", err)
		return exitFinding
	}
	return status
}
