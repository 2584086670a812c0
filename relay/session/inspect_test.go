package session

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

func TestSpoolBody(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	for _, tc := range []struct {
		name   string
		in     io.Reader
		max    int64
		file   bool
		err    error
		expect []byte
	}{
		{"memory", bytes.NewReader(big), int64(len(big)), false, nil, big},
		{"file", bytes.NewReader(big), 100, true, nil, big},
		{"empty", bytes.NewReader(nil), 100, false, nil, nil},
		{"reader error in memory", iotest.TimeoutReader(bytes.NewReader(big)), 1 << 20, false, iotest.ErrTimeout, nil},
		{"reader error while spilling", io.MultiReader(bytes.NewReader(big), iotest.ErrReader(errors.New("cut"))), 100, true, errors.New("cut"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, done, err := spoolBody(tc.in, tc.max)
			if tc.err != nil {
				if err == nil || err.Error() != tc.err.Error() {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			if _, isFile := rs.(*os.File); isFile != tc.file {
				t.Errorf("in a file: %v, want %v", isFile, tc.file)
			}
			for range 2 { // read twice: each stage reads from the start
				if _, err := rs.Seek(0, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rs)
				if err != nil || !bytes.Equal(got, tc.expect) {
					t.Fatalf("read %d bytes (err %v), want %d", len(got), err, len(tc.expect))
				}
			}
			if f, ok := rs.(*os.File); ok {
				if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the temporary file %s is still linked: %v", f.Name(), err)
				}
			}
		})
	}
}
