package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Vectors from `openssl passwd -6 -salt SALT PASSWORD`; the first two are
// also the examples of the SHA-crypt specification.
var sha512Vectors = []struct{ password, hash string }{
	{"Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1000$toolongsaltstrin$uUoPCVs4MbmkLqPR9Zjq9d2xIEsKhIxxOMolJjDvb/MrASr6BCNhSKjZ1p/Mb2UxYCMwvCIkXErgwL61HTZ.R."},
	{"パスワード", "$6$rounds=1000$short$lQJ7vLPUtInJdU57l3FcFuvbIKdcT13ceKK4tjB2OxM3yMQrwXh1mgTNuTpWhrtJEf5e4bC5ZIzu6GcUzkrqg."},
	{"x", "$6$rounds=1001$s$soQ8EY83OzRf0iF.X9fCI0h7m8odrOE7F.2U5v0HuRsD1Akkswa7D4Bk3Q8RqBCf72AB4HYZaHCprLXcObec70"},
}

func TestSHA512CryptVectors(t *testing.T) {
	for _, v := range sha512Vectors {
		ok, err := sha512CryptVerify(v.hash, v.password)
		if err != nil || !ok {
			t.Errorf("%q: ok=%v err=%v", v.hash, ok, err)
		}
		if ok, _ := sha512CryptVerify(v.hash, v.password+"x"); ok {
			t.Errorf("%q accepted a wrong password", v.hash)
		}
	}
	// The salt is cut at 16 characters, as glibc does.
	if got := sha512Crypt("Hello world!", "saltstringsaltstring", 10000, true); got != sha512Vectors[1].hash {
		t.Errorf("long salt: %s", got)
	}
	for _, bad := range []string{"$5$abc$def", "$6$rounds=x$salt$" + strings.Repeat("a", 86), "$6$salt$short", "$6$rounds=99999999$s$" + strings.Repeat("a", 86)} {
		if _, err := sha512CryptVerify(bad, "x"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// RFC 2195's example: user tim, password tanstaaftanstaaf.
const (
	rfcChallenge = "<1896.697170952@postoffice.reston.mci.net>"
	rfcPassword  = "tanstaaftanstaaf"
	rfcDigest    = "b913a602c7eda7a495b4e6e7334d3890"
)

func TestCRAMState(t *testing.T) {
	st := newCRAMState([]byte(rfcPassword))
	sum, err := st.hmac([]byte(rfcChallenge))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(sum) != rfcDigest {
		t.Fatalf("RFC 2195 digest: got %x", sum)
	}
	// Dovecot: `doveadm pw -s CRAM-MD5 -p password`.
	if got := newCRAMState([]byte("password")).String(); got != "9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740" {
		t.Fatalf("Dovecot format: got %s", got)
	}
	back, err := parseCRAMState(st.String())
	if err != nil || back != st {
		t.Fatalf("round trip: %v", err)
	}
	// Keys longer than a block are hashed first, as HMAC requires.
	long := []byte(strings.Repeat("長いパスワード", 10))
	mac := hmac.New(md5.New, long)
	mac.Write([]byte("challenge"))
	got, _ := newCRAMState(long).hmac([]byte("challenge"))
	if !hmac.Equal(got, mac.Sum(nil)) {
		t.Fatal("long key differs from crypto/hmac")
	}
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("{PLAIN}from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop")
	os.WriteFile(loop, []byte("file:"+file), 0o600)
	t.Setenv("SEKISHO_TEST_SECRET", "{CRAM-MD5}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740")
	for _, tc := range []struct {
		ref, scheme, value, err string
	}{
		{ref: "{PLAIN}x", scheme: SchemePlain, value: "x"},
		{ref: "{plain}x", scheme: SchemePlain, value: "x"},
		{ref: "{HMAC-MD5}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740", scheme: SchemeCRAMMD5},
		{ref: "{SHA512-CRYPT}" + sha512Vectors[0].hash, scheme: SchemeSHA512Crypt},
		{ref: "file:" + file, scheme: SchemePlain, value: "from-file"},
		{ref: "env:SEKISHO_TEST_SECRET", scheme: SchemeCRAMMD5},
		{ref: "file:relative/path", err: "must be an absolute path"},
		{ref: "file:" + filepath.Join(dir, "missing"), err: "secret unreadable"},
		{ref: "file:" + loop, err: "may not lead to another"},
		{ref: "env:SEKISHO_TEST_UNSET", err: "is not set"},
		{ref: "password", err: "no {SCHEME} prefix"},
		{ref: "{MD5}abc", err: "unknown scheme {MD5}"},
		{ref: "{CRAM-MD5}abc", err: "64 hex digits"},
		{ref: "{SHA512-CRYPT}$1$x$y", err: "not a $6$ hash"},
		{ref: "{PLAIN", err: "unterminated"},
	} {
		s, err := resolveSecret(tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil || s.scheme != tc.scheme || tc.value != "" && s.value != tc.value {
			t.Errorf("%s: got %+v, %v", tc.ref, s, err)
		}
	}
}

func TestHashPassword(t *testing.T) {
	for _, scheme := range []string{"", "sha512-crypt", "CRAM-MD5"} {
		h, err := HashPassword(scheme, "秘密 pass")
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSecret(h); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		s, _ := resolveSecret(h)
		if ok, err := s.verifyPassword("秘密 pass"); !ok || err != nil {
			t.Errorf("%s does not verify: %v", h, err)
		}
		if ok, _ := s.verifyPassword("秘密 pasS"); ok {
			t.Errorf("%s verifies a wrong password", h)
		}
	}
	h1, _ := HashPassword("", "same")
	h2, _ := HashPassword("", "same")
	if h1 == h2 || !strings.HasPrefix(h1, "{SHA512-CRYPT}$6$rounds=100000$") {
		t.Errorf("salting: %s %s", h1, h2)
	}
	for _, bad := range []struct{ scheme, pw string }{{"PLAIN", "x"}, {"MD5", "x"}, {"", ""}, {"", "a\x00b"}} {
		if _, err := HashPassword(bad.scheme, bad.pw); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func BenchmarkSHA512CryptDefault(b *testing.B) {
	for b.Loop() {
		sha512Crypt("password", "0123456789abcdef", sha512HashRounds, true)
	}
}
