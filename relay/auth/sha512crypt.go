package auth

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-512 crypt ("$6$", Ulrich Drepper's "Unix crypt using SHA-256 and
// SHA-512", as written by glibc crypt(3), `mkpasswd -m sha-512`,
// `openssl passwd -6` and Dovecot's {SHA512-CRYPT}).

const (
	sha512Prefix       = "$6$"
	sha512MaxSalt      = 16
	sha512MinRounds    = 1000
	sha512StdRounds    = 5000 // implied when a hash names no rounds
	sha512HashRounds   = 100000
	sha512MaxRounds    = 10_000_000 // more would let one stored secret stall AUTH
	cryptAlphabet      = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sha512EncodedBytes = 86
)

// sha512CryptParts splits "$6$[rounds=N$]salt$hash".
func sha512CryptParts(s string) (rounds int, explicit bool, salt, sum string, err error) {
	rest, ok := strings.CutPrefix(s, sha512Prefix)
	if !ok {
		return 0, false, "", "", errors.New("not a $6$ hash")
	}
	rounds = sha512StdRounds
	if r, after, found := strings.Cut(rest, "$"); found && strings.HasPrefix(r, "rounds=") {
		n, err := strconv.Atoi(strings.TrimPrefix(r, "rounds="))
		if err != nil || n < 1 {
			return 0, false, "", "", fmt.Errorf("bad rounds %q", r)
		}
		rounds, explicit, rest = min(max(n, sha512MinRounds), 999_999_999), true, after
	}
	salt, sum, found := strings.Cut(rest, "$")
	if !found || len(sum) != sha512EncodedBytes {
		return 0, false, "", "", errors.New("malformed $6$ hash")
	}
	if rounds > sha512MaxRounds {
		return 0, false, "", "", fmt.Errorf("%d rounds is more than the %d accepted", rounds, sha512MaxRounds)
	}
	return rounds, explicit, salt[:min(len(salt), sha512MaxSalt)], sum, nil
}

// sha512Crypt returns the full "$6$..." string for password and salt.
func sha512Crypt(password, salt string, rounds int, explicit bool) string {
	salt = salt[:min(len(salt), sha512MaxSalt)]
	p, s := []byte(password), []byte(salt)
	h := sha512.New()

	// B = H(P S P)
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)

	// A = H(P S B-repeated-to-len(P) <bits of len(P) choosing B or P>)
	h.Reset()
	h.Write(p)
	h.Write(s)
	writeRepeated(h, b, len(p))
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	// P' from H(P repeated len(P) times), S' from H(S repeated 16+A[0] times).
	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	pp := repeatTo(h.Sum(nil), len(p))
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sp := repeatTo(h.Sum(nil), len(s))

	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pp)
		} else {
			h.Write(a)
		}
		if i%3 != 0 {
			h.Write(sp)
		}
		if i%7 != 0 {
			h.Write(pp)
		}
		if i&1 != 0 {
			h.Write(a)
		} else {
			h.Write(pp)
		}
		a = h.Sum(a[:0])
	}

	var out strings.Builder
	out.WriteString(sha512Prefix)
	if explicit {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	// The digest bytes are emitted in a fixed permutation, 3 at a time.
	for i := range 21 {
		x, y, z := a[i], a[i+21], a[i+42]
		switch i % 3 {
		case 1:
			x, y, z = y, z, x
		case 2:
			x, y, z = z, x, y
		}
		encode24(&out, x, y, z, 4)
	}
	encode24(&out, 0, 0, a[63], 2)
	return out.String()
}

func writeRepeated(h hash.Hash, b []byte, n int) {
	for ; n > len(b); n -= len(b) {
		h.Write(b)
	}
	h.Write(b[:n])
}

func repeatTo(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}

func encode24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&0x3f])
		w >>= 6
	}
}

// sha512CryptVerify reports whether password matches the stored hash.
func sha512CryptVerify(stored, password string) (bool, error) {
	rounds, explicit, salt, _, err := sha512CryptParts(stored)
	if err != nil {
		return false, err
	}
	got := sha512Crypt(password, salt, rounds, explicit)
	return subtle.ConstantTimeCompare([]byte(got), []byte(stored)) == 1, nil
}
