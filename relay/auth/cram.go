package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sekisho/sekisho/relay/smtpd"
)

// cramState is the HMAC-MD5 key schedule of a password: the MD5 chaining
// values after the first block of the outer (key XOR opad) and the inner
// (key XOR ipad) hash. It is all CRAM-MD5 needs, and it is what Dovecot
// stores as {CRAM-MD5}: outer a b c d, inner a b c d, each word
// little-endian, 64 hex digits. It is not the password, but whoever holds
// it can answer any CRAM-MD5 challenge (and try to crack it cheaply: one
// MD5 block per guess), so it must be protected like a password.
type cramState [8]uint32

const md5Marshaled = 4 + 4*4 + md5.BlockSize + 8 // crypto/md5's state encoding

func newCRAMState(password []byte) cramState {
	key := password
	if len(key) > md5.BlockSize {
		sum := md5.Sum(key)
		key = sum[:]
	}
	var s cramState
	for half, pad := range []byte{0x5c, 0x36} { // outer, inner
		var block [md5.BlockSize]byte
		copy(block[:], key)
		for i := range block {
			block[i] ^= pad
		}
		h := md5.New()
		h.Write(block[:])
		b, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
		for w := range 4 {
			s[half*4+w] = binary.BigEndian.Uint32(b[4+4*w:])
		}
	}
	return s
}

func parseCRAMState(s string) (cramState, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return cramState{}, errors.New("a {CRAM-MD5} secret is 64 hex digits")
	}
	var st cramState
	for i := range st {
		st[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return st, nil
}

func (s cramState) String() string {
	var b [32]byte
	for i, w := range s {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return hex.EncodeToString(b[:])
}

// resume returns an MD5 hash that has already absorbed one 64-byte block
// with the given chaining values.
func resume(words []uint32) (md5Hash, error) {
	b := make([]byte, 0, md5Marshaled)
	b = append(b, "md5\x01"...)
	for _, w := range words {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	b = append(b, make([]byte, md5.BlockSize)...)
	b = binary.BigEndian.AppendUint64(b, md5.BlockSize)
	h := md5.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return h, nil
}

type md5Hash interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
}

// hmac returns HMAC-MD5(password, msg) from the key schedule.
func (s cramState) hmac(msg []byte) ([]byte, error) {
	inner, err := resume(s[4:])
	if err != nil {
		return nil, err
	}
	inner.Write(msg)
	outer, err := resume(s[:4])
	if err != nil {
		return nil, err
	}
	outer.Write(inner.Sum(nil))
	return outer.Sum(nil), nil
}

// maxUsername bounds a SASL user name; an address is at most 254 octets.
const maxUsername = 320

// parseCRAMResponse splits "user hex-digest" at its last space (RFC 2195).
func parseCRAMResponse(resp []byte) (user string, digest []byte, err error) {
	s := string(resp)
	i := strings.LastIndexByte(s, ' ')
	if i <= 0 {
		return "", nil, errors.New("CRAM-MD5 response is not \"user digest\"")
	}
	user, hexDigest := s[:i], s[i+1:]
	if err := checkUsername(user); err != nil {
		return "", nil, err
	}
	if len(hexDigest) != 2*md5.Size {
		return "", nil, errors.New("CRAM-MD5 digest is not 32 hex digits")
	}
	digest, err = hex.DecodeString(hexDigest)
	if err != nil {
		return "", nil, errors.New("CRAM-MD5 digest is not 32 hex digits")
	}
	return user, digest, nil
}

func checkUsername(u string) error {
	if u == "" || len(u) > maxUsername || !utf8.ValidString(u) {
		return errors.New("bad user name")
	}
	for _, c := range u {
		if c < 0x20 || c == 0x7f {
			return errors.New("control character in user name")
		}
	}
	return nil
}

// randomChallenge is RFC 2195's <random.unixtime@hostname>.
func (a *Authenticator) randomChallenge() ([]byte, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "<%d.%d@%s>", binary.BigEndian.Uint64(r[:]), a.now().Unix(), a.hostname), nil
}

// cramServer is the server side of RFC 2195: one challenge
// <random.unixtime@hostname>, one response "user hex(HMAC-MD5(secret,
// challenge))".
type cramServer struct {
	s         *session
	challenge []byte
	done      bool
}

var errNoInitialResponse = &smtpd.Reply{Code: 501, Enhanced: "5.5.2", Text: "CRAM-MD5 takes no initial response"}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case c.done:
		return nil, true, errAuthFailed
	case c.challenge == nil:
		if resp != nil {
			c.done = true
			return nil, true, errNoInitialResponse
		}
		ch, err := c.s.a.challenge()
		if err != nil {
			c.done = true
			c.s.a.report(c.s.ip, "", "no CRAM-MD5 challenge: "+err.Error())
			return nil, true, errTemporary
		}
		c.challenge = ch
		return ch, false, nil
	}
	c.done = true
	user, digest, err := parseCRAMResponse(resp)
	if err != nil {
		return nil, true, c.s.fail("", err.Error())
	}
	return nil, true, c.s.finish(user, func(sec secret) (bool, error) {
		st, ok := sec.cramState()
		if !ok {
			return false, errors.New("the account's secret scheme cannot answer CRAM-MD5 (needs {CRAM-MD5} or {PLAIN})")
		}
		want, err := st.hmac(c.challenge)
		if err != nil {
			return false, err
		}
		return subtle.ConstantTimeCompare(want, digest) == 1, nil
	})
}
