package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/policy"
)

// probeInput is one probe as flags or a --batch line give it: addresses as
// a client writes them.
type probeInput struct {
	Client   string   `json:"client"`
	Helo     string   `json:"helo"`
	Auth     string   `json:"auth"`
	TLS      bool     `json:"tls"`
	Listener string   `json:"listener"`
	From     string   `json:"from"`
	Rcpts    []string `json:"rcpts"`
	// Header is the message's header block, with its empty line (--batch
	// only; default: a header with only From).
	Header string `json:"header"`
}

// probe checks the input and reads its addresses as the server's command
// parser would; msg says what is wrong.
func (in probeInput) probe() (gateway.Probe, string) {
	ip, err := netip.ParseAddr(in.Client)
	if err != nil {
		return gateway.Probe{}, fmt.Sprintf("--client: %q is not an IP address", in.Client)
	}
	if len(in.Rcpts) == 0 {
		return gateway.Probe{}, "give at least one --rcpt"
	}
	p := gateway.Probe{Client: ip, Helo: in.Helo, AuthUser: in.Auth, TLS: in.TLS, Listener: in.Listener}
	if in.Header != "" {
		p.Header = []byte(in.Header)
	}
	if p.From, err = policy.ParsePath(in.From); err != nil {
		return gateway.Probe{}, fmt.Sprintf("--from %q: %v", in.From, err)
	}
	for _, r := range in.Rcpts {
		a, err := policy.ParsePath(r)
		if err == nil && a == "" {
			err = fmt.Errorf("empty address")
		}
		if err != nil {
			return gateway.Probe{}, fmt.Sprintf("--rcpt %q: %v", r, err)
		}
		p.Rcpts = append(p.Rcpts, a)
	}
	return p, ""
}

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
		var in probeInput
		res := result{Line: n}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			res.Error = "not a JSON probe: " + err.Error()
		} else if p, msg := in.probe(); msg != "" {
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
