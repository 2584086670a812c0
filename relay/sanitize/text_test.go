package sanitize

import (
	"strings"
	"testing"
	"time"
)

func TestTextIsTheSanitizedBody(t *testing.T) {
	msg := "From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<p>見積書を<b>送ります</b><script>alert(1)</script></p><a href=\"http://evil.example/\">link</a>\r\n"
	cfg := DefaultConfig()
	text, rep, err := Text(strings.NewReader(msg), cfg.Options("20261129-0123456789", time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "見積書を送ります") || strings.Contains(text, "<script") || strings.Contains(text, "alert(1)") ||
		strings.Contains(text, "http://evil") || !rep.HTMLConverted {
		t.Errorf("text %q, report %+v", text, rep)
	}
	short, _, _ := Text(strings.NewReader(msg), cfg.Options("", time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC)), 4)
	if len(short) > 4 || !strings.HasPrefix(text, short) {
		t.Errorf("bounded text %q", short)
	}
}
