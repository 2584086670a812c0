package rewrite

import (
	"strings"
	"testing"
)

func TestMessageID(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"From: a@b\r\nMessage-ID: <x@y>\r\n\r\n", "<x@y>"},
		{"message-id:\r\n  <folded@host>\r\n\r\n", "<folded@host>"},
		{"Message-Id: <first@a>\r\nMessage-Id: <second@a>\r\n\r\n", "<first@a>"},
		{"Subject: Message-ID: <no@no>\r\n\r\n", ""},
		{"From: a@b\r\n\r\n", ""},
		{"Message-ID: " + strings.Repeat("x", 2000) + "\r\n\r\n", strings.Repeat("x", maxMessageID)},
	} {
		if got := MessageID([]byte(c.header)); got != c.want {
			t.Errorf("MessageID(%q) = %q, want %q", c.header, got, c.want)
		}
	}
}

func FuzzMessageID(f *testing.F) {
	f.Add([]byte("Message-ID: <x@y>\r\n\r\n"))
	f.Fuzz(func(t *testing.T, h []byte) {
		if got := MessageID(h); len(got) > maxMessageID {
			t.Fatalf("%d bytes", len(got))
		}
	})
}
