package approval

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/store"
)

// The approval mail carries a signed link: it names one request and one
// approver, ends with the request's deadline, and is signed with a key
// kept in the store (every gateway and console sharing it accepts it).
// Following it shows the message and asks for the decision; only the
// form it shows decides, so a mail scanner that fetches links decides
// nothing.

// linkKeySetting names the key among the store's settings.
const linkKeySetting = "approval.link_key"

// LinkKey returns the key links are signed with, made on first use.
func LinkKey(ctx context.Context, st *store.Store) ([]byte, error) {
	return st.SecretKey(ctx, linkKeySetting, "approval links")
}

// ErrBadLink is a link that is not ours, was altered or has expired.
var ErrBadLink = errors.New("approval: the link is not valid (altered, or past its deadline)")

// SignLink makes the token of a link for approver to decide request id,
// valid until expires.
func SignLink(key []byte, id int64, approver string, expires time.Time) string {
	payload := strconv.FormatInt(id, 10) + "|" + strings.ToLower(approver) + "|" + strconv.FormatInt(expires.Unix(), 10)
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return p + "." + linkMAC(key, p)
}

func linkMAC(key []byte, p string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("outbound-link|" + p))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ParseLink checks a token and returns the request and the approver it
// names.
func ParseLink(key []byte, token string, now time.Time) (id int64, approver string, err error) {
	p, mac, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(linkMAC(key, p))) {
		return 0, "", ErrBadLink
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return 0, "", ErrBadLink
	}
	f := strings.Split(string(raw), "|")
	if len(f) != 3 {
		return 0, "", ErrBadLink
	}
	id, err1 := strconv.ParseInt(f[0], 10, 64)
	exp, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || id <= 0 || f[1] == "" || now.After(time.Unix(exp, 0)) {
		return 0, "", ErrBadLink
	}
	return id, f[1], nil
}
