package delivery

import (
	"strings"
	"testing"
)

func tlsTarget(addr string, p TLSPolicy) Target {
	return Target{Host: "mx.test", Addrs: []string{addr}, TLS: p}
}

func TestSTARTTLS(t *testing.T) {
	cert := makeCert(t)
	tests := []struct {
		name      string
		serverTLS bool
		policy    TLSPolicy
		delivered bool
		overTLS   bool
		conns     int    // connections the sink should see
		text      string // for failures, part of Result.Text
	}{
		{"required verified", true, TLSPolicy{Mode: TLSRequired, CAFile: cert.caFile}, true, true, 1, ""},
		{"required by IP name", true, TLSPolicy{Mode: TLSRequired, CAFile: cert.caFile, ServerName: "127.0.0.1"}, true, true, 1, ""},
		{"required untrusted", true, TLSPolicy{Mode: TLSRequired}, false, false, 1, "certificate"},
		{"required wrong name", true, TLSPolicy{Mode: TLSRequired, CAFile: cert.caFile, ServerName: "other.test"}, false, false, 1, "other.test"},
		{"required not offered", false, TLSPolicy{Mode: TLSRequired, CAFile: cert.caFile}, false, false, 1, "does not offer STARTTLS and TLS is required"},
		{"opportunistic verified", true, TLSPolicy{Mode: TLSOpportunistic, CAFile: cert.caFile}, true, true, 1, ""},
		{"opportunistic unverified", true, TLSPolicy{Mode: TLSOpportunistic, InsecureSkipVerify: true}, true, true, 1, ""},
		{"opportunistic not offered", false, TLSPolicy{Mode: TLSOpportunistic}, true, false, 1, ""},
		{"opportunistic handshake fails", true, TLSPolicy{Mode: TLSOpportunistic}, true, false, 2, ""},
		{"empty mode is opportunistic", true, TLSPolicy{}, true, false, 2, ""},
		{"none", true, TLSPolicy{Mode: TLSNone}, true, false, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []sinkOption
			if tc.serverTLS {
				opts = append(opts, withTLS(cert.cert))
			}
			s := newSink(t, opts...)
			c := testClient(t, nil)
			r := deliver(t, c, tlsTarget(s.addr, tc.policy), newMessage("a@example.jp", testBody, "b@example.jp"))[0]
			if r.Delivered != tc.delivered {
				t.Fatalf("delivered = %v: %+v", r.Delivered, r)
			}
			if !tc.delivered && (!r.Temporary || r.Code != 0 || !strings.Contains(r.Text, tc.text)) {
				t.Errorf("want a temporary failure mentioning %q, got %+v", tc.text, r)
			}
			if tc.delivered {
				if msgs := s.messages(); len(msgs) != 1 || msgs[0].tls != tc.overTLS {
					t.Errorf("messages %+v, want one with tls=%v", msgs, tc.overTLS)
				}
			}
			if accepted, _ := s.connCount(); accepted != tc.conns {
				t.Errorf("%d connections, want %d", accepted, tc.conns)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, h := range s.helos {
				if h != "gw.test" {
					t.Errorf("EHLO %q seen; every EHLO must use our name", h)
				}
			}
		})
	}
}

func TestAuth(t *testing.T) {
	cert := makeCert(t)
	secure := TLSPolicy{Mode: TLSRequired, CAFile: cert.caFile}
	tests := []struct {
		name      string
		insecure  bool // the sink offers AUTH without TLS
		policy    TLSPolicy
		auth      Auth
		delivered bool
		text      string
	}{
		{"PLAIN over TLS", false, secure, Auth{Mechanism: MechPlain, Username: "relay", Password: "s3cret"}, true, ""},
		{"LOGIN over TLS", false, secure, Auth{Mechanism: "login", Username: "relay", Password: "s3cret"}, true, ""},
		{"wrong password", false, secure, Auth{Mechanism: MechPlain, Username: "relay", Password: "nope"}, false, `AUTH PLAIN as "relay" at `},
		{"refused without TLS", true, TLSPolicy{Mode: TLSOpportunistic}, Auth{Mechanism: MechPlain, Username: "relay", Password: "s3cret"}, false, "without TLS"},
		{"plain text allowed", true, TLSPolicy{Mode: TLSNone}, Auth{Mechanism: MechLogin, Username: "relay", Password: "s3cret", AllowPlaintext: true}, true, ""},
		{"mechanism not offered", false, secure, Auth{Mechanism: MechPlain, Username: "relay", Password: "s3cret"}, false, "does not offer AUTH PLAIN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []sinkOption{withAuth("relay", "s3cret", tc.insecure)}
			if !tc.insecure {
				opts = append(opts, withTLS(cert.cert))
			}
			if tc.name == "mechanism not offered" {
				opts = []sinkOption{withTLS(cert.cert)}
			}
			s := newSink(t, opts...)
			c := testClient(t, nil)
			tg := tlsTarget(s.addr, tc.policy)
			a := tc.auth
			tg.Auth = &a
			r := deliver(t, c, tg, newMessage("a@example.jp", testBody, "b@example.jp"))[0]
			if r.Delivered != tc.delivered {
				t.Fatalf("delivered = %v: %+v", r.Delivered, r)
			}
			if !tc.delivered {
				if !r.Temporary || !strings.Contains(r.Text, tc.text) {
					t.Errorf("want a temporary failure mentioning %q, got %+v", tc.text, r)
				}
				if tc.name == "wrong password" && !strings.Contains(r.Text, "535 5.7.8") {
					t.Errorf("the server's reply is missing: %q", r.Text)
				}
				return
			}
			if msgs := s.messages(); len(msgs) != 1 || msgs[0].user != "relay" {
				t.Errorf("messages %+v, want one sent as relay", msgs)
			}
		})
	}
}

// Toward a next hop without STARTTLS under opportunistic TLS, the probe's
// EHLO reply is the one used: the connection says EHLO once, also across
// an RSET and the next message (the sink answers a second EHLO with 503,
// as strict servers do). With and without PIPELINING and CHUNKING.
func TestOneEHLOPerConnection(t *testing.T) {
	for _, ext := range [][]string{{"8BITMIME"}, {"PIPELINING"}, {"PIPELINING", "CHUNKING"}} {
		t.Run(strings.Join(ext, "+"), func(t *testing.T) {
			r := newRawSink(t, "", ext...)
			c := testClient(t, nil)
			tg := tlsTarget(r.addr, TLSPolicy{Mode: TLSOpportunistic})
			// Every recipient refused: the transaction ends with RSET.
			res := deliver(t, c, tg, newMessage("a@example.jp", testBody, "bad@example.jp"))
			if res[0].Code != 550 {
				t.Fatalf("first message: %+v", res[0])
			}
			res = deliver(t, c, tg, newMessage("a@example.jp", testBody, "b@example.jp"))
			if !res[0].Delivered {
				t.Fatalf("second message: %+v", res[0])
			}
			commands, _ := r.recorded()
			ehlos := 0
			for _, cmd := range commands {
				if strings.HasPrefix(cmd, "EHLO ") {
					ehlos++
				}
			}
			if ehlos != 1 || r.connections() != 1 {
				t.Errorf("%d EHLO on %d connections, want 1 on 1: %q", ehlos, r.connections(), commands)
			}
		})
	}
}
