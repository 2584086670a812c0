//go:build unix

package gateway

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/sekisho/sekisho/relay/inspect/milter"
	"github.com/sekisho/sekisho/relay/inspect/msgauth"
	"github.com/sekisho/sekisho/routing/dnstest"
)

// BenchmarkSessionAuth is end-to-end throughput through a live engine:
// 8 internet clients on loopback send a 4 KB message signed with
// RSA-2048, each waits for "queued", and the run ends when every message
// has been delivered (into a folder). "off" runs no sender check; "on"
// runs SPF, DKIM verification and DMARC (all "header": the message passes
// and gets our Authentication-Results), the lookups answered by the fake
// DNS over loopback UDP through the checks' caching resolver. Compare the
// msgs/s of the two (the issue asks for on >= 70 % of off). "noop-milter"
// asks one loopback milter that accepts everything: the cost of its round
// trips (one milter connection per message).
func BenchmarkSessionAuth(b *testing.B) {
	d := dnstest.New(b)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	txt := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	d.Add(`rsa._domainkey.example.com. IN TXT "`+txt[:200]+`" "`+txt[200:]+`"`,
		`example.com. IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.example.com. IN TXT "v=DMARC1; p=reject"`)
	h := "From: Alice <alice@example.com>\r\nTo: tanaka@city.toyokawa.lg.jp\r\nSubject: budget\r\nDate: Sun, 29 Nov 2026 10:00:00 +0900\r\nMessage-ID: <m1@example.com>\r\n"
	body := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 64)
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(h+"\r\n"+body), &dkim.SignOptions{
		Domain: "example.com", Selector: "rsa", Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
	}); err != nil {
		b.Fatal(err)
	}
	data := signed.String() + ".\r\n"

	noop := noopMilter(b)
	for _, tc := range []struct {
		name         string
		auth, milter bool
	}{{"off", false, false}, {"spf+dkim+dmarc", true, false}, {"noop-milter", false, true}} {
		on := tc.auth
		b.Run(tc.name, func(b *testing.B) {
			d.ResetQueries()
			sec, dir := testSections(b)
			if on {
				a := &sec.Relay.Inspect.Auth
				a.SPF, a.DKIM, a.DMARC, a.DNSServers = msgauth.Header, msgauth.Header, msgauth.Header, []string{d.Addr}
			}
			if tc.milter {
				sec.Relay.Inspect.Milters = []milter.Config{{Name: "noop", Address: noop}}
			}
			sec.Relay.Delivery.Workers = 4
			e := startEngine(b, sec)
			addr := e.Addrs()[0].String()
			const clients = 8
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			if err := sendSplit(addr, "tanaka@city.toyokawa.lg.jp", b.N, clients, data); err != nil {
				b.Fatal(err)
			}
			for {
				files, _ := filepath.Glob(filepath.Join(dir, "inner", "*.eml")) // not the temporary files being written
				if len(files) >= b.N {
					break
				}
				if time.Since(start) > 5*time.Minute {
					b.Fatalf("%d of %d delivered", len(files), b.N)
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			// CPU per message (gateway, clients and DNS server: one
			// process) is steadier than msgs/s on a shared machine, where
			// the spool's fsyncs wait for other people's disk writes.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
			b.ReportMetric(float64(len(d.Queries())), "dnsq")
			if on {
				files, _ := filepath.Glob(filepath.Join(dir, "inner", "*.eml"))
				m, _ := os.ReadFile(files[0])
				if !bytes.Contains(m, []byte("dkim=pass")) || !bytes.Contains(m, []byte("dmarc=pass")) || !bytes.Contains(m, []byte("spf=pass")) {
					b.Fatalf("the checks did not pass:\n%s", m)
				}
			}
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// noopMilter is a go-milter server on loopback that accepts everything
// and changes nothing: the cost of a milter's round trips alone.
func noopMilter(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return gomilter.NoOpMilter{} }}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "inet:" + l.Addr().String()
}

// sendSplit sends n messages to rcpt from clients connections at once,
// and returns the first failure.
func sendSplit(addr, rcpt string, n, clients int, data string) error {
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		k := n / clients
		if c < n%clients {
			k++
		}
		wg.Go(func() {
			if err := sendTo(addr, rcpt, k, data); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
