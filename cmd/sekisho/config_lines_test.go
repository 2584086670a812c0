package main

import (
	"strings"
	"testing"
)

func TestLineOf(t *testing.T) {
	doc := []byte(`accounts:
  domains:
    - name: a.jp
      mode: mirror
    - name: b.jp
relay:
  hostname: x
  listeners:
    - address: ":25"
      mode: mx
`)
	tests := []struct {
		path string
		want int
	}{
		{"accounts", 1},
		{"accounts.domains[1].name", 5},
		{"accounts.domains[0].mode", 4},
		{"accounts.domains[1].mode", 5}, // not written: the nearest enclosing
		{"relay.listeners[0].mode", 10},
		{"relay.limits.max_recipients", 6},
		{"routing.routes[0]", 0},
		{"accounts.domains[7].name", 2},
	}
	for _, tt := range tests {
		if got := lineOf(doc, tt.path); got != tt.want {
			t.Errorf("lineOf(%s) = %d, want %d", tt.path, got, tt.want)
		}
	}
}

func TestTabLine(t *testing.T) {
	data := []byte("relay:\n  hostname: x\n\tlimits: 1\n")
	if got := locate("f.yaml", data, "line 2: found a tab character that violates indentation"); !strings.HasPrefix(got, "f.yaml:3: a tab in the indentation") {
		t.Errorf("got %q", got)
	}
}

func FuzzLineOf(f *testing.F) {
	f.Add([]byte("a:\n  b:\n    - c: 1\n"), "a.b[0].c")
	f.Add([]byte("a: [1, 2]\n"), "a[5]")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		n := lineOf(data, path)
		if n < 0 || n > strings.Count(string(data), "\n")+1 {
			t.Fatalf("lineOf = %d for a %d-line document", n, strings.Count(string(data), "\n")+1)
		}
		locate("f.yaml", data, path+": reason")
	})
}
