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
	// recycled: the file was a finished segment before (see reuseSpare):
	// what follows the last valid record is free space, not damage.
	recycled bool
}

// segRecycled is the header flag for segHeader.recycled. Flags this build
// does not know are ignored: they describe the space after the records,
// never the records.
const segRecycled = 1

func (h segHeader) encode() []byte {
	b := make([]byte, 0, segHeaderSize)
	b = append(b, segMagic...)
	b = binary.LittleEndian.AppendUint16(b, segVersion)
	var flags uint16
	if h.recycled {
		flags |= segRecycled
	}
	b = binary.LittleEndian.AppendUint16(b, flags)
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
		seq:      binary.LittleEndian.Uint64(b[8:]),
		idFloor:  ID(binary.LittleEndian.Uint64(b[16:])),
		recycled: binary.LittleEndian.Uint16(b[6:])&segRecycled != 0,
	}, nil
}

// frameChecksum covers the segment number, the length and the body: a torn
// or stale record (a block of another segment surfacing after a crash) fails.
// The body is body followed by more.
func frameChecksum(seq uint64, body []byte, more ...[]byte) uint32 {
	var pre [12]byte
	binary.LittleEndian.PutUint64(pre[:], seq)
	binary.LittleEndian.PutUint32(pre[8:], uint32(len(body)+partsLen(more)))
	sum := crc32.Update(crc32.Checksum(pre[:], castagnoli), castagnoli, body)
	for _, p := range more {
		sum = crc32.Update(sum, castagnoli, p)
	}
	return sum
}

// appendFrame appends one framed record whose body is body followed by
// more, all but more: those are written after it as they are.
func appendFrame(b []byte, seq uint64, body []byte, more ...[]byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)+partsLen(more)))
	b = binary.LittleEndian.AppendUint32(b, frameChecksum(seq, body, more...))
	return append(b, body...)
}

func partsLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// scanResult says how much of a segment is trustworthy.
type scanResult struct {
	header segHeader
	// headerBad is why the header could not be read; the records were
	// then checked against the file name's sequence number instead.
	headerBad string
	size      int64  // the file's size
	records   int    // valid records
	end       int64  // the end of the last valid record: the rest is discarded
	stop      string // why scanning stopped before size, if it did
	// zeroTail: everything from end to size is zeros, written ahead of
	// the records (see zeroAhead): unused space, not a torn tail.
	zeroTail bool
	// freeTail: end to size is unused space: zeros (zeroTail), or in a
	// recycled segment whatever the file held before.
	freeTail bool
	// blank: the whole file is zeros, the header too: a segment created
	// just before a crash, before anything in it was synced.
	blank   bool
	damaged []string // damaged stretches skipped before valid records
	skips   []string
}

// minRecordLen is the smallest record body: a type and a message ID.
const minRecordLen = 9

// scanSegment reads the records of a segment in order and calls fn for each
// valid one with its offset and framed length. A record whose frame is
// invalid (torn, impossible length, checksum mismatch) is skipped: when
// its length field is plausible and a valid frame follows it, exactly that
// record; otherwise the scanner looks for the next offset where a valid
// frame starts (see resync) and goes on from there. What follows the last
// valid record (a torn tail) is discarded. A record with a valid checksum
// that does not decode (a bug, not a crash) is skipped and reported.
//
// A damaged header does not hide the records: each carries a checksum
// over the segment number, which the file name gives as well, so they are
// read if the name is that of a segment. Only a header of another format
// version stops the scan with errSegmentVersion.
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
		res.headerBad = err.Error()
		res.header = segHeader{seq: seq}
	} else if res.header.seq != seq {
		res.stop = fmt.Sprintf("header says segment %d, file name says %d", res.header.seq, seq)
		return res, nil
	}
	off := int64(segHeaderSize)
	res.end = off
	var frame [frameSize]byte
	var body []byte
	bad := "" // why the frame at off is invalid
	for off < res.size {
		bad = ""
		var n int64
		switch _, err := io.ReadFull(br, frame[:]); {
		case err != nil:
			bad = fmt.Sprintf("torn frame at byte %d", off)
		case frame == [frameSize]byte{} && zerosFrom(f, off, res.size):
			res.zeroTail, res.freeTail = true, true
			res.blank = res.headerBad != "" && off == segHeaderSize && zeros32(hb)
			return res, nil
		default:
			n = int64(binary.LittleEndian.Uint32(frame[:]))
			if n < minRecordLen || n > maxRecordLen || n > res.size-off-frameSize {
				bad = fmt.Sprintf("bad record length %d at byte %d", n, off)
				n = 0
				break
			}
			if int64(cap(body)) < n {
				body = make([]byte, n)
			}
			body = body[:n]
			if _, err := io.ReadFull(br, body); err != nil {
				bad = fmt.Sprintf("torn record at byte %d", off)
			} else if frameChecksum(seq, body) != binary.LittleEndian.Uint32(frame[4:]) {
				bad = fmt.Sprintf("checksum mismatch at byte %d", off)
			}
		}
		if bad == "" {
			if r, err := decodeRecord(body); err != nil {
				res.skips = append(res.skips, fmt.Sprintf("byte %d: %v", off, err))
			} else {
				fn(r, off, frameSize+n)
				res.records++
			}
			off += frameSize + n
			res.end = off
			continue
		}
		// Skip the damage: past this record when its length is intact and
		// a valid frame follows, else to the next valid frame found.
		next, ok := int64(0), false
		if n > 0 && off+frameSize+n < res.size {
			if _, ok = validFrameAt(f, seq, off+frameSize+n, res.size); ok {
				next = off + frameSize + n
			}
		}
		if !ok {
			next, ok = resync(f, seq, off+1, res.size)
		}
		if !ok {
			res.stop = bad
			break
		}
		res.damaged = append(res.damaged, fmt.Sprintf("%s: %d bytes skipped, records resume at byte %d", bad, next-off, next))
		if _, err := f.Seek(next, io.SeekStart); err != nil {
			return res, err
		}
		br.Reset(f)
		off = next
	}
	// In a recycled segment the records of the file's earlier segment
	// follow this one's, and fail their checksums here: not damage.
	res.freeTail = res.freeTail || res.header.recycled && res.end < res.size
	return res, nil
}

// zerosFrom reports whether the file holds only zero bytes from p to size.
func zerosFrom(f *os.File, p, size int64) bool {
	buf := make([]byte, min(size-p, 1<<20))
	for p < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-p)], p)
		for _, c := range buf[:n] {
			if c != 0 {
				return false
			}
		}
		if err != nil && n == 0 {
			return false
		}
		p += int64(n)
	}
	return true
}

// zeros32 reports whether a header is all zeros.
func zeros32(hb []byte) bool { return [segHeaderSize]byte(hb) == [segHeaderSize]byte{} }

// validFrameAt reports whether a valid frame of segment seq starts at p,
// and its body length.
func validFrameAt(f *os.File, seq uint64, p, size int64) (int64, bool) {
	var frame [frameSize + minRecordLen]byte
	if _, err := f.ReadAt(frame[:], p); err != nil {
		return 0, false
	}
	n := int64(binary.LittleEndian.Uint32(frame[:]))
	if !plausibleFrame(frame[:], p, size) {
		return 0, false
	}
	body := make([]byte, n)
	if _, err := f.ReadAt(body, p+frameSize); err != nil {
		return 0, false
	}
	return n, frameChecksum(seq, body) == binary.LittleEndian.Uint32(frame[4:])
}

// plausibleFrame is the cheap test before a checksum: a length that fits,
// a known record type, and a message ID from a sensible time (IDs carry
// their millisecond of issue in the high bits).
func plausibleFrame(b []byte, p, size int64) bool {
	n := int64(binary.LittleEndian.Uint32(b))
	if n < minRecordLen || n > maxRecordLen || n > size-p-frameSize {
		return false
	}
	switch b[frameSize] {
	case recMessage, recState, recSnapshot, recHold, recRetry, recDelete:
	default:
		return false
	}
	ms := binary.LittleEndian.Uint64(b[frameSize+1:]) >> idCounterBits
	return ms >= minPlausibleMs && ms <= maxPlausibleMs
}

// The span of issue times a resync accepts in a record's message ID:
// 2000-01-01 to 2200-01-01.
const (
	minPlausibleMs = 946684800000
	maxPlausibleMs = 7258118400000
)

// resync finds the first offset at or after from where a valid frame of
// segment seq starts. Message data could contain bytes that look like a
// frame; one that passes needs the right length, record type, ID range
// and a CRC-32C over this segment's number, so it can only be made on
// purpose, and only counts when damage happens to lie right before it.
// The file is read in windows; a checksum is computed only for offsets
// that pass the cheap tests.
func resync(f *os.File, seq uint64, from, size int64) (int64, bool) {
	const window = 1 << 20
	buf := make([]byte, window+frameSize+minRecordLen)
	for base := from; base+frameSize+minRecordLen <= size; base += window {
		n, _ := f.ReadAt(buf, base)
		for i := 0; i < window && i+frameSize+minRecordLen <= n; i++ {
			p := base + int64(i)
			if !plausibleFrame(buf[i:], p, size) {
				continue
			}
			if _, ok := validFrameAt(f, seq, p, size); ok {
				return p, true
			}
		}
	}
	return 0, false
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
