package conformance

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/sekisho/sekisho/routing/dnstest"
)

// Timeouts. Every wait in the suite is bounded by one of these; they are
// generous because the gateway may run under the race detector on a busy
// two-core machine.
const (
	waitTimeout  = 30 * time.Second // a delivery, a DSN, the queue draining
	replyTimeout = 15 * time.Second // one SMTP reply
	startTimeout = 30 * time.Second // the gateway answering 220
)

// Client addresses on loopback. Linux answers the whole of 127/8, so a
// client picks its source address and the gateway sees the network it
// stands for.
const (
	innerIP    = "127.0.0.10" // the inner mail server (the seeds' 192.168.0.103)
	internetIP = "127.0.0.66" // a host on the internet
	staffIP    = "127.0.10.5" // a PC on the staff LAN (effect.dat "192.168.10.* default")
)

// sources names the client addresses for dialogues ("connect mx from inner").
var sources = map[string]string{"inner": innerIP, "internet": internetIP, "staff": staffIP}

// world is one scenario's set of peers: the fake DNS, the sinks, the files
// and the gateway under test.
type world struct {
	t        *testing.T
	dir      string
	dns      *dnstest.Server
	sinks    map[string]*sink
	order    []string          // sink names in creation order
	ports    map[string]string // listener name -> 127.0.0.1:port
	tlsPorts map[string]bool   // listeners with implicit TLS
	metrics  string
	cert     *testCert
	gw       *gateway
}

func newWorld(t *testing.T) *world {
	t.Helper()
	needBinary(t)
	return &world{
		t:        t,
		dir:      t.TempDir(),
		dns:      dnstest.New(t),
		sinks:    map[string]*sink{},
		ports:    map[string]string{},
		tlsPorts: map[string]bool{},
	}
}

// sink returns the sink called name, starting it on a free loopback port
// the first time.
func (w *world) sink(name string) *sink {
	w.t.Helper()
	if s, ok := w.sinks[name]; ok {
		return s
	}
	s, err := newSink(w.t, name, "127.0.0.1:0")
	if err != nil {
		w.t.Fatalf("sink %s: %v", name, err)
	}
	w.addSink(s)
	return s
}

func (w *world) addSink(s *sink) {
	w.sinks[s.name] = s
	w.order = append(w.order, s.name)
}

// port25Sink starts a sink on ip:25, for MX hosts: MX delivery always uses
// port 25. Binding it needs root or CAP_NET_BIND_SERVICE.
func (w *world) port25Sink(name, ip string) *sink {
	w.t.Helper()
	s, err := newSink(w.t, name, net.JoinHostPort(ip, "25"))
	if err != nil {
		w.t.Fatalf("sink %s: MX hosts are reached on port 25, so this scenario binds %s:25 "+
			"(run as root or grant CAP_NET_BIND_SERVICE to the test binary): %v", name, ip, err)
	}
	w.addSink(s)
	return s
}

// port returns the address of the gateway listener called name, choosing
// a free loopback port the first time.
func (w *world) port(name string) string {
	if a, ok := w.ports[name]; ok {
		return a
	}
	a := freePort(w.t)
	w.ports[name] = a
	return a
}

// freePort returns a loopback address for the gateway to listen on once
// it starts. The port comes from below the kernel's ephemeral range: a
// port the kernel handed out and took back would be the next outgoing
// connection's source port as soon as any, and the gateway's bind would
// then fail. Ports free now are tried in random order.
func freePort(t testing.TB) string {
	t.Helper()
	lo := ephemeralLow()
	for range 200 {
		port := 10000 + rand.IntN(max(lo-10000, 1))
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	t.Fatal("free port: no port below the ephemeral range is free")
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// the IANA range's 49152 elsewhere).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
			return n
		}
	}
	return 49152
}

// path returns a path inside the scenario's folder.
func (w *world) path(name string) string { return filepath.Join(w.dir, name) }

// writeFile writes a file in the scenario's folder and returns its path.
func (w *world) writeFile(name, content string) string {
	w.t.Helper()
	p := w.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// render expands a configuration template. The functions:
//
//	{{listen "mx"}}     a free 127.0.0.1 port for the listener called mx
//	{{listenTLS "s"}}   the same, for an smtps listener (readiness via TLS)
//	{{sink "inner"}}    the address of the sink called inner (started now)
//	{{dns}}             the fake DNS server
//	{{path "x.tsv"}}    a file in the scenario folder
//	{{cert}} {{key}}    a self-signed certificate for gw.test.jp, 127.0.0.1
//	{{runtime}}         relay.queue, relay.log and relay.metrics for a test
//	{{delivery}}        relay.delivery with a 1 s retry interval
func (w *world) render(text string) string {
	w.t.Helper()
	funcs := template.FuncMap{
		"listen": w.port,
		"listenTLS": func(name string) string {
			w.tlsPorts[name] = true
			return w.port(name)
		},
		"sink": func(name string) string { return w.sink(name).addr },
		"dns":  func() string { return w.dns.Addr },
		"path": w.path,
		"cert": func() string { return w.testCert().certFile },
		"key":  func() string { return w.testCert().keyFile },
		"runtime": func() string {
			if w.metrics == "" {
				w.metrics = freePort(w.t)
			}
			return fmt.Sprintf(`  queue:
    dir: %s
  log:
    format: text
    level: debug
  metrics:
    address: %s`, w.path("queue"), w.metrics)
		},
		"delivery": func() string {
			return `  delivery:
    retry_interval: 1s
    connect_timeout: 3s
    command_timeout: 10s
    data_timeout: 10s
    idle_timeout: 1s`
		},
	}
	tmpl, err := template.New("config").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		w.t.Fatalf("configuration template: %v", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, nil); err != nil {
		w.t.Fatalf("configuration template: %v", err)
	}
	return b.String()
}

// configure renders the template into config.yaml and returns its path.
// Every configuration must point routing.dns at the fake server, so that
// no scenario ever asks the real DNS.
func (w *world) configure(text string) string {
	w.t.Helper()
	cfg := w.render(text)
	if !strings.Contains(cfg, w.dns.Addr) {
		w.t.Fatalf("the scenario's configuration does not set routing.dns.servers to the fake DNS ({{dns}}):\n%s", cfg)
	}
	return w.writeFile("config.yaml", cfg)
}

// start writes the configuration and starts the gateway with it; the
// gateway is stopped with SIGTERM when the test ends.
func (w *world) start(text string) *gateway {
	w.t.Helper()
	g := w.newGateway(w.configure(text))
	if err := g.start(); err != nil {
		w.t.Fatal(err)
	}
	return g
}

// source resolves a dialogue's client name to an address.
func source(name string) (string, error) {
	if ip, ok := sources[name]; ok {
		return ip, nil
	}
	if net.ParseIP(name) != nil {
		return name, nil
	}
	return "", fmt.Errorf("unknown client %q (inner, internet, staff or an IP)", name)
}

// startFails starts the gateway with a configuration it must refuse and
// returns its exit status and output.
func (w *world) startFails(text string) (int, string) {
	w.t.Helper()
	g := w.newGateway(w.configure(text))
	if err := g.start(); err == nil {
		w.t.Fatalf("sekisho serve started; want it to refuse the configuration")
	}
	code, ok := g.wait(startTimeout)
	if !ok {
		w.t.Fatalf("sekisho serve neither answered nor exited within %v", startTimeout)
	}
	return code, g.logs.String()
}
