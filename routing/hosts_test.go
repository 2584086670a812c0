package routing

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	in := "\uFEFF# hosts override\n" +
		"192.168.0.103  inner.city.example.lg.jp inner   # the inner server\n" +
		"192.168.0.104\tinner.city.example.lg.jp\n" +
		"2001:db8::25 inner.city.example.lg.jp\n" +
		"\n" +
		"192.168.0.x bad.example\n" +
		"10.0.0.1\n" +
		"10.0.0.2 bad..name good.example\n"
	h := hostsTable{}
	errs := parseHosts(strings.NewReader(in), "hosts", h)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`hosts:6: "192.168.0.x" is not an IP address`,
		"hosts:7: 10.0.0.1 has no host name",
		"hosts:8: ",
	}
	if len(got) != len(want) {
		t.Fatalf("errors %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want %q", i, got[i], want[i])
		}
	}
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	if !slices.Equal(h["inner.city.example.lg.jp"], addrs("192.168.0.103", "192.168.0.104", "2001:db8::25")) ||
		!slices.Equal(h["inner"], addrs("192.168.0.103")) || !slices.Equal(h["good.example"], addrs("10.0.0.2")) {
		t.Errorf("table = %v", h)
	}
}

func TestLoadHosts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(file, []byte("192.0.2.1 a.example b.example\n"), 0o644)
	h, err := loadHosts([]HostConfig{{Name: "B.Example", Addrs: []string{"192.0.2.9"}}}, file)
	if err != nil {
		t.Fatal(err)
	}
	if h["a.example"][0].String() != "192.0.2.1" || len(h["b.example"]) != 1 || h["b.example"][0].String() != "192.0.2.9" {
		t.Errorf("inline entries must replace the file's: %v", h)
	}
	os.WriteFile(file, []byte("192.0.2.1 a.example\nnonsense\n"), 0o644)
	if _, err := loadHosts(nil, file); err == nil || err.Error() != "hosts_file: "+file+`:2: "nonsense" is not an IP address` {
		t.Errorf("bad hosts file: %v", err)
	}
	if _, err := loadHosts(nil, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing hosts file was accepted")
	}
}

func FuzzParseHosts(f *testing.F) {
	f.Add("192.0.2.1 a.example b\n# c\n::1 localhost\n")
	f.Add("192.0.2.1")
	f.Add("fe80::1%eth0 x")
	f.Fuzz(func(t *testing.T, in string) {
		h := hostsTable{}
		parseHosts(strings.NewReader(in), "f", h)
		for name, ips := range h {
			if n, err := hostName(name); err != nil || n != name {
				t.Fatalf("stored name %q is not canonical (%v)", name, err)
			}
			for _, ip := range ips {
				if !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() {
					t.Fatalf("stored address %v", ip)
				}
			}
		}
	})
}

func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"mail.example.jp", "a.jp:2525", "[2001:db8::1]:25", "2001:db8::1", "192.0.2.1", "例え.jp:25", "[1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, err := parseHostPort(s, smtpPort)
		if err != nil {
			return
		}
		again, err := parseHostPort(hp.String(), 1)
		if err != nil || again != hp {
			t.Fatalf("%q -> %q -> %+v, %v", s, hp.String(), again, err)
		}
	})
}
