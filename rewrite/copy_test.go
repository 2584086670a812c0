package rewrite

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// copyConfig is the LGWAN option as the municipal example writes it: the
// receive-time rule decides where a recipient goes, each route's set what
// its copy carries; "legacy" is an older style, header and sender rules at
// receive time with a recipient condition.
func copyConfig() Config {
	return Config{
		Rules: []RuleConfig{
			{Name: "recipients-to-lg", Table: testTable, Classes: []string{"envelope_recipient"}, Source: inner},
			{Name: "legacy-sender-to-lg", Table: testTable, Classes: []string{"envelope_sender", "header_sender"},
				Source: []string{"authenticated"}, RecipientDomain: []string{"*.lg.jp"}},
		},
		Sets: []SetConfig{
			{Name: "to-lgwan", Rules: []RuleConfig{{Name: "lgwan-addresses", Table: testTable,
				Classes: []string{"envelope_sender", "header_sender", "header_recipient"}, Source: inner}}},
			{Name: "to-internet", Rules: []RuleConfig{{Name: "internet-addresses", Table: testTable, Direction: "reverse",
				Classes: []string{"envelope_sender", "header_sender", "header_recipient"}, Source: allSources}}},
			{Name: "merge", Rules: []RuleConfig{{Name: "old-to-new", Address: "old@example.com", Replace: "new@example.com", Source: allSources}}},
		},
	}
}

const copyHeader = "From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <tanaka@city.toyokawa.aichi.jp>\r\n" +
	"Reply-To: <tanaka@city.toyokawa.lg.jp>\r\n" +
	"To: \"名古屋市 企画課\" <kikaku@city.nagoya.jp>,\r\n" +
	"  friend@example.com (友人)\r\n" +
	"Cc: bucho@city.toyokawa.aichi.jp\r\n" +
	"Subject: =?UTF-8?B?5Lya6K2w?=\r\n" +
	"\r\n"

func TestCopy(t *testing.T) {
	w := mustNew(t, copyConfig())
	lgwan := strings.NewReplacer("@city.toyokawa.aichi.jp", "@city.toyokawa.lg.jp", "@city.nagoya.jp", "@city.nagoya.lg.jp").Replace(copyHeader)
	internet := strings.Replace(copyHeader, "tanaka@city.toyokawa.lg.jp", "tanaka@city.toyokawa.aichi.jp", 1)
	tests := []struct {
		name       string
		in         CopyInput
		from       string
		to         string // "," between recipients
		of         []int
		header     string // "" means unchanged
		rules, err string
	}{
		{
			name: "the LGWAN copy speaks LG",
			in:   CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"kikaku@city.nagoya.lg.jp"}, Set: "to-lgwan", Source: SourceInner},
			from: "tanaka@city.toyokawa.lg.jp", to: "kikaku@city.nagoya.lg.jp", of: []int{0}, header: lgwan,
			rules: "to-lgwan/lgwan-addresses env-from, From:, To:, Cc:",
		},
		{
			name: "the internet copy speaks regional",
			in:   CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"friend@example.com"}, Set: "to-internet", Source: SourceInner},
			from: "tanaka@city.toyokawa.aichi.jp", to: "friend@example.com", of: []int{0}, header: internet,
			rules: "to-internet/internet-addresses Reply-To:",
		},
		{
			name: "a route without a set gets the message as received",
			in:   CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"bucho@city.toyokawa.lg.jp"}, Source: SourceInner},
			from: "tanaka@city.toyokawa.aichi.jp", to: "bucho@city.toyokawa.lg.jp", of: []int{0},
		},
		{
			name: "receive-time rules decide the sender per copy: all of this copy's recipients are on LGWAN",
			in:   CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"kikaku@city.nagoya.lg.jp"}, Source: SourceAuthenticated},
			from: "tanaka@city.toyokawa.lg.jp", to: "kikaku@city.nagoya.lg.jp", of: []int{0},
			header: strings.Replace(copyHeader, "<tanaka@city.toyokawa.aichi.jp>", "<tanaka@city.toyokawa.lg.jp>", 1),
			rules:  "legacy-sender-to-lg env-from, From:",
		},
		{
			name: "receive-time rules decide the sender per copy: this copy goes to the internet",
			in:   CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"friend@example.com"}, Source: SourceAuthenticated},
			from: "tanaka@city.toyokawa.aichi.jp", to: "friend@example.com", of: []int{0},
		},
		{
			name: "queued recipients are not rewritten again by the receive-time rules",
			in:   CopyInput{From: "tanaka@city.toyokawa.aichi.jp", To: []string{"kikaku@city.nagoya.jp"}, Source: SourceInner},
			from: "tanaka@city.toyokawa.aichi.jp", to: "kikaku@city.nagoya.jp", of: []int{0},
		},
		{
			name: "two recipients the set maps to one address are sent once",
			in: CopyInput{From: "", To: []string{"old@example.com", "x@example.com", "new@EXAMPLE.com"}, Set: "merge",
				Source: SourceInner},
			from: "", to: "new@example.com,x@example.com", of: []int{0, 1, 0},
			rules: "merge/old-to-new env-to",
		},
		{
			name: "an unknown set is an error",
			in:   CopyInput{From: "a@example.com", To: []string{"b@example.com"}, Set: "nope", Source: SourceInner},
			from: "a@example.com", to: "b@example.com", of: []int{0}, err: `rewrite set "nope" does not exist`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Header = []byte(copyHeader)
			out, err := w.Copy(in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.From != tt.from || strings.Join(out.To, ",") != tt.to || !slices.Equal(out.Of, tt.of) {
				t.Errorf("envelope %q %q %v, want %q %q %v", out.From, out.To, out.Of, tt.from, tt.to, tt.of)
			}
			want := tt.header
			if want == "" {
				want = copyHeader
			}
			if string(out.Header) != want {
				t.Errorf("header:\n%s\nwant:\n%s", out.Header, want)
			}
			if out.HeaderChanged != (tt.header != "") {
				t.Errorf("HeaderChanged %v", out.HeaderChanged)
			}
			if tt.header == "" && &out.Header[0] != &in.Header[0] {
				t.Errorf("an unchanged header was copied")
			}
			if got := firedRules(out.Trace); got != tt.rules {
				t.Errorf("rules fired %q, want %q", got, tt.rules)
			}
		})
	}
}

// firedRules summarizes a trace as "set/rule positions", one entry a rule.
func firedRules(trace []Step) string {
	var out []string
	for _, st := range trace {
		if st.Rule == "" || st.Before == st.After {
			continue
		}
		name := st.Rule
		if st.Set != "" {
			name = st.Set + "/" + st.Rule
		}
		pos := st.Position
		if st.Field >= 0 {
			pos += ":"
		}
		if len(out) > 0 && strings.HasPrefix(out[len(out)-1], name+" ") {
			if !strings.HasSuffix(out[len(out)-1], " "+pos) && !strings.Contains(out[len(out)-1], " "+pos+",") {
				out[len(out)-1] += ", " + pos
			}
			continue
		}
		out = append(out, name+" "+pos)
	}
	return strings.Join(out, "; ")
}

func TestCopyReadsHeader(t *testing.T) {
	w := mustNew(t, Config{
		Rules: []RuleConfig{{Name: "r", Table: testTable, Classes: []string{"envelope_recipient"}, Source: inner}},
		Sets: []SetConfig{
			{Name: "env", Rules: []RuleConfig{{Name: "e", Table: testTable, Classes: []string{"envelope_sender"}, Source: inner}}},
			{Name: "hdr", Rules: []RuleConfig{{Name: "h", Table: testTable, Classes: []string{"header_sender"}, Source: inner}}},
		},
	})
	inside := func(netip.Addr) bool { return true }
	for _, tt := range []struct {
		in   CopyInput
		want bool
	}{
		{CopyInput{Source: SourceInner}, false},
		{CopyInput{Source: SourceInner, Set: "env"}, false},
		{CopyInput{Source: SourceInner, Set: "hdr"}, true},
		{CopyInput{Source: SourceInternet, Set: "hdr"}, false},
		{CopyInput{Source: SourceInner, Received: ReceivedPolicy{Remove: true, Inner: inside}}, true},
		{CopyInput{Source: SourceInner, Received: ReceivedPolicy{Remove: true}}, false},
	} {
		if got := w.CopyReadsHeader(tt.in); got != tt.want {
			t.Errorf("CopyReadsHeader(%+v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// The inner server (Postfix, HELO inner.city.lan, 192.168.0.103) got the
// message from a PC on the staff LAN and passed it to the gateway.
const tracedHeader = "Received: from inner.city.lan ([192.168.0.103])\r\n" +
	"\tby gw.city.toyokawa.lg.jp (sekisho) with ESMTP id k3j5a.1; Sun, 29 Nov 2026 14:05:06 +0900\r\n" +
	"Received: from pc123.city.lan (unknown [192.168.10.5])\r\n" +
	"\tby mail.city.lan (Postfix) with ESMTP id 4AB12C3\r\n" +
	"\tfor <bucho@city.toyokawa.aichi.jp>; Sun, 29 Nov 2026 14:05:05 +0900\r\n" +
	"Received: by mail.city.lan (Postfix, from userid 1000) id 4AB12C2; Sun, 29 Nov 2026 14:05:04 +0900\r\n" +
	"Received: from mx.example.org (mx.example.org [203.0.113.5])\r\n" +
	"\tby gw.city.toyokawa.lg.jp (sekisho) with ESMTP id k3j4z.1; Sun, 29 Nov 2026 14:00:00 +0900\r\n" +
	"From: <tanaka@city.toyokawa.aichi.jp>\r\n" +
	"Subject: inner.city.lan 192.168.0.103 stays in other fields\r\n" +
	"\r\n"

func TestReceivedPolicy(t *testing.T) {
	inner := func(a netip.Addr) bool {
		return netip.MustParsePrefix("192.168.0.103/32").Contains(a) || netip.MustParsePrefix("2001:db8::/64").Contains(a)
	}
	ours := "Received: from internal ([internal])\r\n" +
		"\tby gw.city.toyokawa.lg.jp (sekisho) with ESMTP id k3j5a.1; Sun, 29 Nov 2026 14:05:06 +0900\r\n"
	internet := "Received: from mx.example.org (mx.example.org [203.0.113.5])\r\n" +
		"\tby gw.city.toyokawa.lg.jp (sekisho) with ESMTP id k3j4z.1; Sun, 29 Nov 2026 14:00:00 +0900\r\n"
	rest := "From: <tanaka@city.toyokawa.aichi.jp>\r\n" +
		"Subject: inner.city.lan 192.168.0.103 stays in other fields\r\n\r\n"
	tests := []struct {
		name    string
		p       ReceivedPolicy
		header  string
		want    string
		changes string
	}{
		{
			name: "remove-inner: the inner server's fields go, ours is masked, the internet's stays",
			p:    ReceivedPolicy{Remove: true, Inner: inner, Self: "gw.city.toyokawa.lg.jp"},
			want: ours + internet + rest, header: tracedHeader,
			changes: "0 masked inner.city.lan,192.168.0.103; 1 removed by mail.city.lan; 2 removed by mail.city.lan",
		},
		{
			name:   "mask-inner: inner addresses and the names seen with them, nothing else",
			p:      ReceivedPolicy{Mask: true, Inner: inner, Self: "gw.city.toyokawa.lg.jp"},
			header: tracedHeader,
			want: ours +
				"Received: from pc123.city.lan (unknown [192.168.10.5])\r\n" +
				"\tby internal (Postfix) with ESMTP id 4AB12C3\r\n" +
				"\tfor <bucho@city.toyokawa.aichi.jp>; Sun, 29 Nov 2026 14:05:05 +0900\r\n" +
				"Received: by internal (Postfix, from userid 1000) id 4AB12C2; Sun, 29 Nov 2026 14:05:04 +0900\r\n" +
				internet + rest,
			changes: "0 masked inner.city.lan,192.168.0.103; 1 masked mail.city.lan; 2 masked mail.city.lan",
		},
		{
			name:   "nothing inner: the same memory",
			p:      ReceivedPolicy{Remove: true, Inner: inner, Self: "gw.city.toyokawa.lg.jp"},
			header: internet + rest, want: internet + rest,
		},
		{
			name: "IPv6 literals, helo=, a trailing dot, a mailbox that looks like a host",
			p:    ReceivedPolicy{Mask: true, Inner: inner, Self: "gw.example"},
			header: "Received: from [IPv6:2001:db8::5] (helo=Inner.City.Lan.)\r\n" +
				"\tby gw.example with esmtp for <x@inner.city.lan>; Sun, 29 Nov 2026 14:05:06 +0900\r\n" +
				"Received: from a (b [2001:db8::5]) by inner.city.lan; date\r\n\r\n",
			want: "Received: from [internal] (helo=internal.)\r\n" +
				"\tby gw.example with esmtp for <x@inner.city.lan>; Sun, 29 Nov 2026 14:05:06 +0900\r\n" +
				"Received: from internal (internal [internal]) by internal; date\r\n\r\n",
			changes: "0 masked IPv6:2001:db8::5,Inner.City.Lan; 1 masked a,b,2001:db8::5,inner.city.lan",
		},
		{
			name:    "unreadable fields are left alone",
			p:       ReceivedPolicy{Remove: true, Inner: inner, Self: "gw.example"},
			header:  "Received: from (unclosed [192.168.0.103] by x\r\nReceived: ; nothing\r\n\r\n",
			want:    "Received: from (unclosed [internal] by x\r\nReceived: ; nothing\r\n\r\n",
			changes: "0 masked 192.168.0.103",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.header)
			got, changes := tt.p.apply(in)
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			var cs []string
			for _, c := range changes {
				s := strings.TrimSpace(strings.Join([]string{strconv.Itoa(c.Field), map[bool]string{true: "removed by " + c.By}[c.Removed]}, " "))
				if len(c.Masked) > 0 {
					s += " masked " + strings.Join(c.Masked, ",")
				}
				cs = append(cs, s)
			}
			if g := strings.Join(cs, "; "); g != tt.changes {
				t.Errorf("changes %q, want %q", g, tt.changes)
			}
			if tt.changes == "" && &got[0] != &in[0] {
				t.Errorf("an unchanged header was copied")
			}
		})
	}
}

// A field that grows past 998 octets when a short inner name becomes
// "internal" is refolded.
func TestReceivedPolicyRefolds(t *testing.T) {
	long := "Received: from a ([192.168.0.103]) by gw.example (" + strings.Repeat("a ", 400) + "); date\r\n\r\n"
	p := ReceivedPolicy{Mask: true, Inner: func(a netip.Addr) bool { return a == netip.MustParseAddr("192.168.0.103") }, Self: "gw.example"}
	got, _ := p.apply([]byte(long))
	if longestLine(got) > maxLine {
		t.Errorf("a line of %d octets", longestLine(got))
	}
	if !strings.Contains(string(got), "from internal ([internal])") {
		t.Errorf("not masked: %.200s", got)
	}
}

func FuzzReceivedPolicy(f *testing.F) {
	f.Add(tracedHeader)
	f.Add("Received: from [IPv6:2001:db8::5] (helo=x) by y; z\r\n\r\n")
	f.Add("Received: (((\r\n\r\n")
	p := ReceivedPolicy{Remove: true, Inner: func(a netip.Addr) bool { return a.IsPrivate() || a.IsLoopback() }, Self: "gw.city.toyokawa.lg.jp"}
	m := p
	m.Remove, m.Mask = false, true
	f.Fuzz(func(t *testing.T, h string) {
		for _, p := range []ReceivedPolicy{p, m} {
			got, changes := p.apply([]byte(h))
			if len(changes) == 0 && string(got) != h {
				t.Fatalf("changed without a change listed")
			}
			// Only Received fields change: the rest stays byte for byte.
			if otherFields(string(got)) != otherFields(h) {
				t.Fatalf("a field other than Received changed:\n%q\n%q", h, got)
			}
		}
	})
}

func otherFields(h string) string {
	var b strings.Builder
	for _, f := range splitFields(h, nil) {
		if !strings.EqualFold(f.name(h), "Received") {
			b.WriteString(h[f.start:f.end])
		}
	}
	return b.String()
}
