package keyerr

import (
	"errors"
	"io"
	"testing"
)

func TestFlattenAndPrefix(t *testing.T) {
	if Flatten(nil) != nil || Prefix("x.", nil) != nil {
		t.Fatal("nil in, something out")
	}
	a, b, c := errors.New("a: 1"), errors.New("b: 2"), io.EOF
	tree := errors.Join(a, errors.Join(b, errors.Join(c)))
	got := Flatten(tree)
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("Flatten = %v", got)
	}
	p := Prefix("sec.", tree)
	if p.Error() != "sec.a: 1\nsec.b: 2\nsec.EOF" {
		t.Errorf("Prefix = %q", p.Error())
	}
	if !errors.Is(p, io.EOF) {
		t.Error("Prefix lost the wrapped error")
	}
}
