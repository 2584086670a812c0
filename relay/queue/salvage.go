package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Salvaged is what Salvage could read from a segment file that recovery
// set aside (*.corrupt) or any other segment.
type Salvaged struct {
	File     string            `json:"file"`
	Segment  uint64            `json:"segment"`
	Records  int               `json:"records"`  // valid records replayed
	Problems []string          `json:"problems"` // damage skipped or discarded
	Messages []SalvagedMessage `json:"messages"` // unfinished messages, oldest first
	Finished int               `json:"finished"` // messages the file shows delivered, failed or deleted
}

// SalvagedMessage is one unfinished message found in the file.
type SalvagedMessage struct {
	Message
	// Data is the message's bytes; nil when they cannot be read (a large
	// message whose file under large/ is gone).
	Data    []byte `json:"-"`
	Missing string `json:"missing,omitempty"` // why Data is nil
}

// Salvage reads a segment file outside any spool: every record that
// passes its checksum is replayed (resynchronizing after damage, as Open
// does), then the records about the same messages in the newer segments
// beside it (the spool the file was set aside from), and the messages left
// unfinished are returned with their bytes. A large message's bytes are
// looked for in large/ beside the file. It changes nothing on disk.
func Salvage(path string) (Salvaged, error) {
	out := Salvaged{File: path}
	seq, err := salvageSeq(path)
	if err != nil {
		return out, err
	}
	out.Segment = seq
	dir := filepath.Dir(path)
	q := newSpool(Config{Dir: dir}, buildOptions(nil))
	q.readOnly, q.replaying, q.closed = true, true, true
	seen := map[ID]bool{}
	res, err := scanSegment(path, seq, func(r *record, off, n int64) {
		out.Records++
		if r.typ == recMessage {
			seen[r.id] = true
		}
		q.apply(r, seq, off, n)
	})
	if errors.Is(err, errSegmentVersion) {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	if err != nil {
		return out, &StorageError{Op: "read", Path: path, Err: err}
	}
	if res.headerBad != "" {
		out.Problems = append(out.Problems, "damaged header ("+res.headerBad+"); records read by their own checksums")
	}
	out.Problems = append(out.Problems, res.damaged...)
	out.Problems = append(out.Problems, res.skips...)
	if res.end < res.size && !res.freeTail {
		why := res.stop
		if res.end == 0 {
			res.end = segHeaderSize
		}
		out.Problems = append(out.Problems, fmt.Sprintf("%d bytes from byte %d unreadable (%s)", res.size-res.end, res.end, why))
	}
	// The outcomes recorded later, in the spool's newer segments beside
	// the file, count too: a message delivered or copied forward after
	// this segment was written must not be imported again.
	later, _ := listSegments(dir)
	for _, s := range later {
		if s <= seq {
			continue
		}
		scanSegment(segPath(dir, s), s, func(r *record, off, n int64) {
			switch {
			case !seen[r.id]:
			case r.typ == recMessage: // copied forward: the spool has it
				if e := q.msgs[r.id]; e != nil {
					q.remove(e)
				}
			default:
				q.apply(r, seq, 0, 0)
			}
		})
	}
	f, err := os.Open(path)
	if err != nil {
		return out, &StorageError{Op: "open", Path: path, Err: err}
	}
	defer f.Close()
	for id := range seen {
		e := q.msgs[id]
		if e == nil {
			out.Finished++
			continue
		}
		sm := SalvagedMessage{Message: e.snapshot()}
		if e.blob {
			b, err := os.ReadFile(filepath.Join(dir, blobDir, blobName(id)))
			if err != nil {
				sm.Missing = fmt.Sprintf("its data was in %s: %v", filepath.Join(blobDir, blobName(id)), err)
			} else {
				sm.Data = b
			}
		} else {
			b := make([]byte, e.env.Size)
			if _, err := f.ReadAt(b, e.dataOff); err != nil && !errors.Is(err, io.EOF) {
				sm.Missing = "reading its data: " + err.Error()
			} else {
				sm.Data = b
			}
		}
		out.Messages = append(out.Messages, sm)
	}
	sort.Slice(out.Messages, func(i, j int) bool { return out.Messages[i].ID < out.Messages[j].ID })
	return out, nil
}

// salvageSeq is the segment number whose records the file holds: from its
// name (with any suffix such as .corrupt removed), else from its header
// even when the header's checksum fails.
func salvageSeq(path string) (uint64, error) {
	name := filepath.Base(path)
	if i := strings.Index(name, segSuffix); i >= 0 {
		if seq, ok := parseSegName(name[:i+len(segSuffix)]); ok {
			return seq, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, &StorageError{Op: "open", Path: path, Err: err}
	}
	defer f.Close()
	var hb [segHeaderSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil || string(hb[:4]) != segMagic {
		return 0, fmt.Errorf("%s: neither the name (NNNNNNNNNNNNNNNN.seg) nor the header says which segment this is", path)
	}
	return binary.LittleEndian.Uint64(hb[8:]), nil
}

// Import queues a salvaged message again as a new message, for the
// recipients that were not yet delivered or failed. A message whose ID is
// still queued is not imported twice: it returns ErrAlreadyQueued.
func (q *Spool) Import(m SalvagedMessage) (ID, error) {
	if m.Data == nil {
		return 0, fmt.Errorf("message %s: %s", m.ID, m.Missing)
	}
	if _, err := q.Get(m.ID); err == nil {
		return 0, fmt.Errorf("%w: %s", ErrAlreadyQueued, m.ID)
	}
	env := m.Envelope.clone()
	env.Rcpts = env.Rcpts[:0]
	for i, r := range m.Envelope.Rcpts {
		if i < len(m.Rcpts) && !m.Rcpts[i].Status.Final() {
			env.Rcpts = append(env.Rcpts, r)
		}
	}
	if len(env.Rcpts) == 0 {
		return 0, fmt.Errorf("message %s: every recipient is final", m.ID)
	}
	return q.Enqueue(env, bytes.NewReader(m.Data))
}
