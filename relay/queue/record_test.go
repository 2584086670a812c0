package queue

import (
	"github.com/sekisho/sekisho/rewrite"

	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	t0 = time.Unix(1743499800, 123456789)
	t1 = time.Unix(1743500000, 0)
)

func sampleRecords() []*record {
	env := Envelope{
		From: "", ReceivedAt: t0, Source: rewrite.SourceInternet, ClientIP: "2001:db8::25", Helo: "mx.example.jp",
		AuthUser: "taro", EnvID: "QQ314159", Ret: "HDRS", BodyType: "8BITMIME", SMTPUTF8: true,
		Rcpts: []Recipient{
			{Addr: "taro@city.example.lg.jp", OrigAddr: "taro@city.example.jp", Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;taro@city.example.jp"},
			{Addr: "受付@市役所.jp", OrigAddr: "受付@市役所.jp"},
		},
	}
	deferred := RcptState{Status: Deferred, Attempts: 3, Refusals: 1, NextAttempt: t1, Updated: t0, LastError: "451 4.3.0 later", DelayNotified: true}
	return []*record{
		{typ: recMessage, id: 0x1234, env: env, states: []RcptState{{}, deferred}},
		{typ: recMessage, id: 0x1235, held: true, blob: true, dataLen: 5 << 20, env: env, states: []RcptState{deferred, {Status: Failed}},
			about: 0x1234, marks: []rcptUpdate{{rcpt: 1, state: RcptState{Status: Failed, Attempts: 1, LastError: "550 5.1.1 no"}}}},
		{typ: recState, id: 0x1236, update: rcptUpdate{rcpt: 7, state: deferred}},
		{typ: recSnapshot, id: 0x1237, held: true, states: []RcptState{deferred, {Status: Delivered, Updated: t1}}},
		{typ: recHold, id: 0x1238, held: true},
		{typ: recHold, id: 0x1239},
		{typ: recRetry, id: 0x123a, at: t1},
		{typ: recDelete, id: 0x123b},
	}
}

func encodeRecord(r *record, data []byte) []byte {
	if r.typ != recMessage {
		return appendSmall(nil, r)
	}
	b := appendMessageHead(nil, r)
	if !r.blob {
		r.dataStart, r.dataLen = len(b), int64(len(data))
		b = append(b, data...)
	}
	r.env.Size = r.dataLen
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	data := []byte("Subject: hi\r\n\r\nbody\r\n")
	for _, want := range sampleRecords() {
		body := encodeRecord(want, data)
		got, err := decodeRecord(body)
		if err != nil {
			t.Fatalf("%c: %v", want.typ, err)
		}
		if !reflect.DeepEqual(normRecord(got), normRecord(want)) {
			t.Errorf("%c round trip:\n got %+v\nwant %+v", want.typ, got, want)
		}
		if want.typ == recMessage && !want.blob && !bytes.Equal(body[got.dataStart:], data) {
			t.Errorf("inline data = %q", body[got.dataStart:])
		}
		// Every cut before the data is an error, never a panic or a
		// shorter record.
		end := len(body)
		if want.typ == recMessage && !want.blob {
			end = want.dataStart
		}
		for cut := range end {
			if r, err := decodeRecord(body[:cut]); err == nil {
				t.Errorf("%c cut at %d/%d decoded: %+v", want.typ, cut, len(body), r)
			}
		}
	}
}

// normRecord drops what time.Unix and decoding do not preserve (locations).
func normRecord(r *record) *record {
	c := *r
	c.env.ReceivedAt = c.env.ReceivedAt.UTC()
	c.at = c.at.UTC()
	fix := func(st []RcptState) []RcptState {
		out := append([]RcptState(nil), st...)
		for i := range out {
			out[i].NextAttempt, out[i].Updated = utcOrZero(out[i].NextAttempt), utcOrZero(out[i].Updated)
		}
		return out
	}
	c.states = fix(c.states)
	c.update.state = fix([]RcptState{c.update.state})[0]
	c.marks = append([]rcptUpdate(nil), c.marks...)
	for i := range c.marks {
		c.marks[i].state = fix([]RcptState{c.marks[i].state})[0]
	}
	if len(c.marks) == 0 {
		c.marks = nil
	}
	return &c
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func TestDecodeRejects(t *testing.T) {
	id := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for name, body := range map[string][]byte{
		"empty":           {},
		"unknown type":    append([]byte{'Z'}, id...),
		"ID zero":         append([]byte{recDelete}, make([]byte, 8)...),
		"trailing bytes":  append(append([]byte{recDelete}, id...), 0),
		"bad hold flag":   append(append([]byte{recHold}, id...), 2),
		"bad status":      append(append([]byte{recState}, id...), 0, 9, 0, 0, 0, 0, 0, 0),
		"bad state flags": append(append([]byte{recState}, id...), 0, 0, 4, 0, 0, 0, 0, 0),
		"huge count":      append(append([]byte{recSnapshot}, id...), 0, 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if r, err := decodeRecord(body); err == nil {
			t.Errorf("%s: decoded %+v", name, r)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(encodeRecord(r, []byte("data")))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRecord(body)
		if err != nil {
			return
		}
		var data []byte
		if r.typ == recMessage && !r.blob {
			data = body[r.dataStart:]
		}
		again, err := decodeRecord(encodeRecord(r, data))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(normRecord(again), normRecord(r)) {
			t.Fatalf("re-encoding changed the record:\n%+v\n%+v", again, r)
		}
	})
}

// FuzzScanSegment feeds arbitrary bytes after a valid header: the scanner
// must stop cleanly, never panic or allocate beyond the file.
func FuzzScanSegment(f *testing.F) {
	f.Add(appendFrame(nil, 1, encodeRecord(sampleRecords()[0], []byte("x"))))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, tail []byte) {
		path := filepath.Join(t.TempDir(), segName(1))
		if err := os.WriteFile(path, append(segHeader{seq: 1}.encode(), tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := scanSegment(path, 1, func(*record, int64, int64) {})
		if err != nil {
			t.Fatal(err)
		}
		if res.end < segHeaderSize || res.end > res.size {
			t.Fatalf("valid end %d outside the file (%d bytes)", res.end, res.size)
		}
	})
}

// TestSegmentGolden pins the on-disk format documented in doc.go: a
// segment written by a spool with a fixed clock, as a hex dump.
func TestSegmentGolden(t *testing.T) {
	now := time.Date(2025, 4, 1, 9, 30, 0, 0, time.UTC)
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg, WithClock(func() time.Time { return now }))
	env := testEnvelope("taro@city.example.lg.jp", "hanako@city.example.lg.jp")
	a := enqueue(t, q, env, []byte("Subject: golden\r\n\r\nbody\r\n"))
	must(t, q.MarkDelivered(a, 0))
	must(t, q.MarkDeferred(a, 1, now.Add(2*time.Minute), "451 4.7.1 greylisted"))
	must(t, q.Hold(a))
	must(t, q.Retry(a, now))
	must(t, q.Release(a))
	must(t, q.Delete(a))
	must(t, q.Close())
	path, seq := onlySegment(t, cfg.Dir)
	got, err := os.ReadFile(path)
	must(t, err)
	// The records, then zeros written ahead of them (see zeroAhead).
	res, err := scanSegment(path, seq, func(*record, int64, int64) {})
	must(t, err)
	if !res.zeroTail || res.end >= int64(len(got)) {
		t.Fatalf("segment of %d bytes: records end at %d, zero tail %v", len(got), res.end, res.zeroTail)
	}
	dump := hex.Dump(got[:res.end])
	golden := filepath.Join("testdata", "segment.golden")
	if *update {
		must(t, os.WriteFile(golden, []byte(dump), 0o644))
	}
	want, err := os.ReadFile(golden)
	must(t, err)
	if dump != string(want) {
		t.Errorf("segment bytes differ from %s (run with -update if the format change is intended):\n%s", golden, dump)
	}
}

func TestSegmentHeader(t *testing.T) {
	h := segHeader{seq: 42, idFloor: 0xABCDEF}
	b := h.encode()
	if len(b) != segHeaderSize {
		t.Fatalf("header is %d bytes", len(b))
	}
	got, err := decodeSegHeader(b)
	if err != nil || got != h {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	for i := range 24 {
		bad := bytes.Clone(b)
		bad[i] ^= 1
		if _, err := decodeSegHeader(bad); err == nil {
			t.Errorf("flipped bit in byte %d not detected", i)
		}
	}
	for _, name := range []string{"0000000000000000.seg", "1.seg", "000000000000000g.seg", "0000000000000001.sex"} {
		if _, ok := parseSegName(name); ok {
			t.Errorf("parseSegName(%q) accepted", name)
		}
	}
	if seq, ok := parseSegName(segName(0xbeef)); !ok || seq != 0xbeef {
		t.Errorf("segment name round trip: %d %v", seq, ok)
	}
}

func TestIsRefusal(t *testing.T) {
	for reason, want := range map[string]bool{
		"550 5.1.1 no such user": true, "554": true, "552-too big": true,
		"451 4.3.0 later": false, "5.1.1 no": false, "connection refused": false, "": false, "5500 x": false,
	} {
		if got := isRefusal(reason); got != want {
			t.Errorf("isRefusal(%q) = %v", reason, got)
		}
	}
	if !strings.Contains(Status(9).String(), "9") {
		t.Errorf("unknown status prints %q", Status(9))
	}
}
