package rewrite

import (
	"slices"
	"testing"
)

func TestEnvelopeFromHeader(t *testing.T) {
	for _, tt := range []struct {
		name, hdr string
		from      string
		rcpts     []string
	}{
		{"return-path first", "Return-Path: <bounce@example.com>\r\nFrom: a@example.com\r\nTo: b@example.jp, c@example.jp\r\nCc: B@example.jp\r\n\r\n",
			"bounce@example.com", []string{"b@example.jp", "c@example.jp"}},
		{"null return-path", "Return-Path: <>\r\nFrom: a@example.com\r\nTo: b@example.jp\r\n\r\n", "", []string{"b@example.jp"}},
		{"no return-path: the first From", "From: a@example.com\r\nTo: b@example.jp\r\n\r\n", "a@example.com", []string{"b@example.jp"}},
		{"folded return-path", "Return-Path:\r\n <bounce@example.com>\r\nFrom: a@example.com\r\nTo: b@example.jp\r\n\r\n",
			"bounce@example.com", []string{"b@example.jp"}},
		{"a continuation line is not a field", "Subject: hello\r\n Return-Path: <evil@example.net>\r\nFrom: a@example.com\r\nTo: b@example.jp\r\n\r\n",
			"a@example.com", []string{"b@example.jp"}},
	} {
		from, rcpts := EnvelopeFromHeader([]byte(tt.hdr))
		if from != tt.from || !slices.Equal(rcpts, tt.rcpts) {
			t.Errorf("%s: got %q %q, want %q %q", tt.name, from, rcpts, tt.from, tt.rcpts)
		}
	}
}
