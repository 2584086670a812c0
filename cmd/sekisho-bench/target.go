package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/accounts"
)

// gateway is a sekisho process the bench started, configured for the job:
// the relay domain's accounts mirrored, the regional sender rewritten to
// the LG domain, every route to the sink.
type gateway struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	output *os.File
	exited chan error
}

// gatewayConfig writes the configuration the bench runs sekisho with.
// consoleAddr, when set, also turns on the console there and with it the
// store and the message trace (what --console measures).
func gatewayConfig(listen, sinkAddr string, j job, maxConns int, consoleAddr string) string {
	console := ""
	if consoleAddr != "" {
		console = fmt.Sprintf(`  store:
    path: sekisho.db
console:
  listeners:
    - address: %q
      http: true
  administrators: [user00001@%s]
`, consoleAddr, j.lgDomain)
	}
	return fmt.Sprintf(`# Written by sekisho-bench: the benchmark job, everything to the sink.
accounts:
  directory: accounts.tsv
  domains:
    - name: %[3]s
      mode: mirror
rewrite:
  rules:
    - name: regional-to-lg
      domain: %[4]s
      replace: %[3]s
      source: [inner, authenticated, internet]
routing:
  routes:
    - name: sink
      domain: %[3]s
      targets: [%[2]q]
      tls: none
  smart_host:
    targets: [%[2]q]
    tls: none
relay:
  hostname: gateway.bench.invalid
  listeners:
    - address: %[1]q
      mode: mx
  limits:
    max_connections: %[5]d
    max_connections_per_ip: %[5]d
  guard:
    inner_networks: [127.0.0.0/8, "::1/128"]
  queue:
    dir: queue
  log:
    file: sekisho.log
    format: text
    level: info
%[6]s`, listen, sinkAddr, j.lgDomain, j.regional, maxConns, console)
}

// writeAccounts writes the directory file with the job's valid recipients.
func writeAccounts(path string, j job) error {
	records := make([]accounts.Record, j.recipients)
	for i := range records {
		records[i] = accounts.Record{Local: fmt.Sprintf("user%05d", i+1), Domain: j.lgDomain}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := accounts.WriteRecords(w, records); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freePort asks the kernel for an unused loopback port.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startGateway writes the configuration and the accounts into dir, starts
// `bin serve -c dir/sekisho.yaml` and waits until it greets.
func startGateway(bin, dir, sinkAddr string, j job, maxConns int, withConsole bool, cpuProfile string) (*gateway, error) {
	if err := writeAccounts(filepath.Join(dir, "accounts.tsv"), j); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	consoleAddr := ""
	if withConsole {
		if consoleAddr, err = freePort(); err != nil {
			return nil, err
		}
	}
	cfgPath := filepath.Join(dir, "sekisho.yaml")
	if err := os.WriteFile(cfgPath, []byte(gatewayConfig(addr, sinkAddr, j, maxConns, consoleAddr)), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "sekisho.out"))
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-c", cfgPath}
	if cpuProfile != "" {
		abs, err := filepath.Abs(cpuProfile)
		if err != nil {
			return nil, err
		}
		args = append(args, "--cpuprofile", abs)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	// The gateway must not outlive the bench, even when the bench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	g := &gateway{cmd: cmd, addr: addr, dir: dir, output: out, exited: make(chan error, 1)}
	go func() { g.exited <- cmd.Wait() }()
	if err := g.waitReady(30 * time.Second); err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

// waitReady polls until the gateway answers with a 220 greeting.
func (g *gateway) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-g.exited:
			g.exited <- err
			return fmt.Errorf("sekisho exited (%v):\n%s", err, g.tail())
		default:
		}
		if c, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("sekisho did not greet on %s within %v:\n%s", g.addr, limit, g.tail())
}

func (g *gateway) PID() int { return g.cmd.Process.Pid }

// tail returns the end of the gateway's output, for error messages.
func (g *gateway) tail() string {
	data, _ := os.ReadFile(g.output.Name())
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// Stop sends SIGTERM and waits for the gateway to finish its sessions.
func (g *gateway) Stop() error {
	defer g.output.Close()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-g.exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("sekisho: %v:\n%s", err, g.tail())
		}
		return err
	case <-time.After(40 * time.Second):
		g.cmd.Process.Kill()
		return fmt.Errorf("sekisho did not stop within 40s after SIGTERM")
	}
}
