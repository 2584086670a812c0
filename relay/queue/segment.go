package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Segment files: a 32-byte header, then framed records. See doc.go.
const (
	segMagic      = "SKSQ"
	segVersion    = 1
	segHeaderSize = 32
	frameSize     = 8         // u32 body length, u32 checksum
	maxRecordLen  = 256 << 20 // no record is larger: inline data is capped far below
	segSuffix     = ".seg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSegmentVersion is a segment written by another version of sekisho:
// the spool is refused rather than read wrongly or set aside.
var errSegmentVersion = errors.New("queue: unsupported spool format")

// Directory layout under Config.Dir.
const (
	lockName = "lock"
	blobDir  = "large"
	ctlDir   = "ctl"
)

func segName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segSuffix) }

// parseSegName returns the sequence number of a segment file name.
func parseSegName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil && seq > 0
}

func blobName(id ID) string { return id.String() + ".msg" }

// segHeader opens every segment: which segment it is (so a file renamed or
// restored from elsewhere is caught) and a floor for message IDs, so IDs
// keep growing even when every older segment has been removed.
type segHeader struct {
	seq     uint64
	idFloor ID
}

func (h segHeader) encode() []byte {
	b := make([]byte, 0, segHeaderSize)
	b = append(b, segMagic...)
	b = binary.LittleEndian.AppendUint16(b, segVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, h.seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.idFloor))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return binary.LittleEndian.AppendUint32(b, 0)
}

func decodeSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSize {
		return segHeader{}, errors.New("header truncated")
	}
	if string(b[:4]) != segMagic {
		return segHeader{}, errors.New("not a segment (bad magic)")
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]) {
		return segHeader{}, errors.New("header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != segVersion {
		return segHeader{}, fmt.Errorf("%w: segment format version %d, this build reads %d", errSegmentVersion, v, segVersion)
	}
	return segHeader{
		seq:     binary.LittleEndian.Uint64(b[8:]),
		idFloor: ID(binary.LittleEndian.Uint64(b[16:])),
	}, nil
}

// frameChecksum covers the segment number, the length and the body: a torn
// or stale record (a block of another segment surfacing after a crash) fails.
func frameChecksum(seq uint64, body []byte) uint32 {
	var pre [12]byte
	binary.LittleEndian.PutUint64(pre[:], seq)
	binary.LittleEndian.PutUint32(pre[8:], uint32(len(body)))
	return crc32.Update(crc32.Checksum(pre[:], castagnoli), castagnoli, body)
}

// appendFrame appends one framed record.
func appendFrame(b []byte, seq uint64, body []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = binary.LittleEndian.AppendUint32(b, frameChecksum(seq, body))
	return append(b, body...)
}

// scanResult says how much of a segment is trustworthy.
type scanResult struct {
	header segHeader
	size   int64  // the file's size
	end    int64  // the end of the last valid record: the rest is discarded
	stop   string // why scanning stopped before size, if it did
	skips  []string
}

// scanSegment reads the records of a segment in order and calls fn for each
// valid one with its offset and framed length. It stops at the first record whose frame is
// invalid (torn, short, checksum mismatch): nothing after it is trusted,
// and scanning never resynchronises, because message data could contain
// bytes that look like a record. A record with a valid checksum that does
// not decode (a bug, not a crash) is skipped and reported.
func scanSegment(path string, seq uint64, fn func(r *record, off, n int64)) (scanResult, error) {
	var res scanResult
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, err
	}
	res.size = st.Size()
	br := bufio.NewReaderSize(f, 1<<20)
	hb := make([]byte, segHeaderSize)
	if _, err := io.ReadFull(br, hb); err != nil {
		res.stop = "header truncated"
		return res, nil
	}
	if res.header, err = decodeSegHeader(hb); err != nil {
		if errors.Is(err, errSegmentVersion) {
			return res, err
		}
		res.stop = err.Error()
		return res, nil
	}
	if res.header.seq != seq {
		res.stop = fmt.Sprintf("header says segment %d, file name says %d", res.header.seq, seq)
		return res, nil
	}
	off := int64(segHeaderSize)
	res.end = off
	var frame [frameSize]byte
	var body []byte
	for off < res.size {
		if _, err := io.ReadFull(br, frame[:]); err != nil {
			res.stop = fmt.Sprintf("torn frame at byte %d", off)
			break
		}
		n := int64(binary.LittleEndian.Uint32(frame[:]))
		if n == 0 || n > maxRecordLen || n > res.size-off-frameSize {
			res.stop = fmt.Sprintf("bad record length %d at byte %d", n, off)
			break
		}
		if int64(cap(body)) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			res.stop = fmt.Sprintf("torn record at byte %d", off)
			break
		}
		if frameChecksum(seq, body) != binary.LittleEndian.Uint32(frame[4:]) {
			res.stop = fmt.Sprintf("checksum mismatch at byte %d", off)
			break
		}
		if r, err := decodeRecord(body); err != nil {
			res.skips = append(res.skips, fmt.Sprintf("byte %d: %v", off, err))
		} else {
			fn(r, off, frameSize+n)
		}
		off += frameSize + n
		res.end = off
	}
	return res, nil
}

// listSegments returns the segment sequence numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		if seq, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	// ReadDir sorts by name, and fixed-width hex names sort numerically.
	return seqs, nil
}

func segPath(dir string, seq uint64) string { return filepath.Join(dir, segName(seq)) }
