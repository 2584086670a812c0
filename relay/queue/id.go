package queue

import (
	"fmt"
	"time"
)

// ID names a queued message. It is the acceptance time in milliseconds
// (high 42 bits) and a counter (low 22 bits), so IDs sort by arrival, and
// it prints as 13 characters of Crockford base32: safe in logs, Received
// headers and file names, and case-insensitive when typed back.
type ID uint64

const (
	idCounterBits = 22
	idLen         = 13
	idAlphabet    = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" // ascending in ASCII, so text order is numeric order
)

var idValue = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(idAlphabet); i++ {
		v[idAlphabet[i]] = int8(i)
		v[idAlphabet[i]|0x20] = int8(i) // lower case
	}
	// Crockford's readings of look-alikes.
	for _, c := range "oO" {
		v[c] = 0
	}
	for _, c := range "iIlL" {
		v[c] = 1
	}
	return v
}()

func (id ID) String() string {
	var b [idLen]byte
	v := uint64(id)
	for i := idLen - 1; i >= 0; i-- {
		b[i] = idAlphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

// MarshalText writes the ID as String does.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses what ParseID accepts.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	*id = v
	return err
}

// ParseID reads an ID as printed by String (any case).
func ParseID(s string) (ID, error) {
	if len(s) != idLen {
		return 0, fmt.Errorf("queue ID %q: want %d characters", s, idLen)
	}
	// 13 characters carry 65 bits: the first may only use the low 4.
	var v uint64
	for i := 0; i < len(s); i++ {
		d := idValue[s[i]]
		if d < 0 || (i == 0 && d > 15) {
			return 0, fmt.Errorf("queue ID %q: bad character %q", s, s[i])
		}
		v = v<<5 | uint64(d)
	}
	if v == 0 {
		return 0, fmt.Errorf("queue ID %q: zero", s)
	}
	return ID(v), nil
}

// CanonicalID is s as String prints it when s is a queue ID (a person
// may type one in lower case), else s as it is: the trace stores IDs as
// printed, and a search field that also takes release IDs must not
// change those.
func CanonicalID(s string) string {
	if id, err := ParseID(s); err == nil {
		return id.String()
	}
	return s
}

// Time is when the message was accepted, to the millisecond.
func (id ID) Time() time.Time {
	return time.UnixMilli(int64(uint64(id) >> idCounterBits))
}

// nextID returns an ID above last: the current millisecond with a zero
// counter, or last+1 when the clock has not moved on (or went back).
func nextID(last ID, now time.Time) ID {
	base := ID(uint64(now.UnixMilli()) << idCounterBits)
	if base > last {
		return base
	}
	return last + 1
}
