package queue

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// A segment with a damaged header and a damaged record, set aside by an
// older build, still yields its unfinished messages: Salvage shows them
// with their bytes, skips what later segments finished, and Import queues
// them again once.
func TestSalvage(t *testing.T) {
	cfg := testConfig(t.TempDir())
	q := openTest(t, cfg)
	var ids []ID
	var data [][]byte
	for i := range 40 { // more than one segment
		size := 2048
		if i == 5 {
			size = 9000 // a large message: its own file
		}
		data = append(data, msgData(i, size))
		ids = append(ids, enqueue(t, q, testEnvelope("a@x.jp", "b@x.jp"), data[i]))
	}
	must(t, q.MarkDelivered(ids[1], 0))                                    // one recipient left
	must(t, q.MarkDeferred(ids[2], 0, time.Now().Add(time.Hour), "451 x")) // still both
	must(t, q.MarkDelivered(ids[3], 0))
	must(t, q.MarkDelivered(ids[3], 1)) // finished, in a newer segment
	must(t, q.Close())
	seqs, err := listSegments(cfg.Dir)
	must(t, err)
	first := segPath(cfg.Dir, seqs[0])
	offs := recordOffsets(t, first, seqs[0])
	inFirst := len(offs) - 1
	flip(t, first, 12)         // the header
	flip(t, first, offs[7]+30) // message 7's record
	corrupt := first + ".corrupt"
	must(t, os.Rename(first, corrupt))

	s, err := Salvage(corrupt)
	must(t, err)
	if s.Segment != seqs[0] || len(s.Problems) < 2 {
		t.Errorf("segment %d, problems %q", s.Segment, s.Problems)
	}
	got := map[ID]SalvagedMessage{}
	for _, m := range s.Messages {
		got[m.ID] = m
	}
	for i := 0; i < inFirst; i++ {
		m, ok := got[ids[i]]
		switch {
		case i == 3 || i == 7:
			if ok {
				t.Errorf("message %d salvaged, want it left out (finished / damaged)", i)
			}
		case !ok:
			t.Errorf("message %d not salvaged", i)
		case !bytes.Equal(m.Data, data[i]):
			t.Errorf("message %d: data differs", i)
		}
	}
	if m := got[ids[1]]; m.Rcpts[0].Status != Delivered || m.Rcpts[1].Status.Final() {
		t.Errorf("message 1 states %+v", m.Rcpts)
	}

	q = openTest(t, cfg)
	before := len(q.List())
	for _, m := range s.Messages {
		if _, err := q.Import(m); err != nil {
			t.Fatalf("Import %s: %v", m.ID, err)
		}
	}
	list := q.List()
	if len(list) < before+len(s.Messages) {
		t.Fatalf("%d messages after import, want %d", len(list), before+len(s.Messages))
	}
	var oneLeft bool
	for _, m := range list {
		if m.Envelope.ReceivedAt.Equal(testEnvelope().ReceivedAt) && len(m.Envelope.Rcpts) == 1 && m.Envelope.Rcpts[0].Addr == "b@x.jp" {
			oneLeft = true
		}
	}
	if !oneLeft {
		t.Error("message 1 imported with its delivered recipient")
	}
	if _, err := q.Import(SalvagedMessage{Message: list[len(list)-1], Data: []byte("x")}); !errors.Is(err, ErrAlreadyQueued) {
		t.Errorf("importing a queued message: %v, want ErrAlreadyQueued", err)
	}
}
