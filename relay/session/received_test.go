package session

import (
	"net/netip"
	"testing"
)

func TestSanitizeHelo(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		in   string
		ip   netip.Addr
		want string
	}{
		{"mail.example.jp", v4, "mail.example.jp"},
		{"", v4, "[192.0.2.1]"},
		{"", v6, "[IPv6:2001:db8::1]"},
		{"()", v4, "[192.0.2.1]"},
		{"a(b);c", v4, "abc"},
	} {
		if got := sanitizeHelo(tc.in, tc.ip); got != tc.want {
			t.Errorf("sanitizeHelo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
