// Package dsn builds RFC 3464 delivery status notifications (bounces and
// delay warnings) with a Japanese and English explanation, and decides which
// messages may be bounced at all.
//
// A notification is a multipart/report (RFC 6522) with three parts: a
// human-readable text/plain part, the machine-readable message/delivery-status
// part, and the original message's header as text/rfc822-headers. The whole
// message is 7-bit so it can be relayed to any next hop, including one without
// 8BITMIME: the human-readable part is UTF-8 in quoted-printable (the English
// text, addresses and reply codes stay legible in the raw message and in the
// spool; base64 would hide them, and ISO-2022-JP cannot carry a UTF-8 address
// or a remote server's UTF-8 reply). The header part is quoted-printable only
// when the original header has 8-bit bytes (raw Shift_JIS or UTF-8), long
// lines or NULs. The one exception to 7-bit is a UTF-8 envelope sender: its
// address goes into the To field as is (RFC 6532), so that notification
// needs a next hop with SMTPUTF8.
//
// The envelope sender of a notification is always the null path "<>"; the
// caller queues the bytes from Build with MAIL FROM:<> to Params.To.
package dsn

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"time"
)

// Action is the per-recipient Action field of RFC 3464 §2.3.3: the
// actions a relay reports on its own.
type Action string

// The actions Build accepts. Relayed answers NOTIFY=SUCCESS when the next
// hop does not offer DSN (RFC 3461 §4.2): the message was handed over and
// no further notice will follow. A notification reports either failures
// and delays, or relays only.
const (
	Failed  Action = "failed"
	Delayed Action = "delayed"
	Relayed Action = "relayed"
)

// Recipient is one recipient the notification reports on.
type Recipient struct {
	// Final is the address delivery was attempted to (Final-Recipient), as
	// go-smtp hands it over: quotes removed. Build re-quotes the local part.
	Final string
	// Original is the ORCPT of RFC 3461, either "type;address" (for example
	// "rfc822;taro@example.jp") or a bare address. Empty: no field.
	Original string
	Action   Action
	// Status is the enhanced status code, "5.1.1".
	Status string
	// RemoteMTA is the host name (or "type; name") of the server that gave
	// the reply. Empty when no server answered.
	RemoteMTA string
	// DiagnosticCode is "smtp; 550 5.1.1 ...". Without a type, a text that
	// starts with a reply code gets "smtp; ", anything else (our own reason,
	// "connect to 192.0.2.1:25: connection refused") gets "x-sekisho; ".
	// It may come from a remote server: Build sanitizes it, never fails on it.
	DiagnosticCode string
	LastAttempt    time.Time
	// WillRetryUntil is reported for delayed recipients only.
	WillRetryUntil time.Time
}

// Params describes one notification.
type Params struct {
	// ReportingMTA is this gateway's host name.
	ReportingMTA string
	// From is the header From address; empty means MAILER-DAEMON@ReportingMTA.
	From string
	// To is the original envelope sender, the notification's only recipient.
	To string
	// OrigEnvID is the ENVID of RFC 3461 (decoded from xtext), if any.
	OrigEnvID   string
	ArrivalDate time.Time
	Recipients  []Recipient
	// OriginalHeader is the original message's header, raw. Anything after
	// the first empty line is ignored. Empty: no third part.
	OriginalHeader []byte
	// OriginalMessage, when set, is the whole original message (header
	// and body): the third part is then message/rfc822 with it instead of
	// the header alone. For a copy to the postmaster; a bounce to the
	// sender carries the header only.
	OriginalMessage []byte
	// MessageID of the notification, "<id@host>" or "id@host". Empty: a
	// fresh one is generated.
	MessageID string
	// Date of the notification. Zero: now.
	Date time.Time
}

// Build returns the notification as a complete RFC 5322 message with CRLF
// line endings. Errors name the offending parameter; data that comes from
// remote servers (diagnostics, remote host names, the original header) is
// sanitized instead of refused, so a hostile reply cannot suppress a bounce.
func Build(p Params) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Date.IsZero() {
		p.Date = time.Now()
	}
	if p.From == "" {
		p.From = "MAILER-DAEMON@" + p.ReportingMTA
	}
	msgID, err := messageID(p.MessageID, p.ReportingMTA, p.Date)
	if err != nil {
		return nil, err
	}

	human, err := qpEncode(humanText(&p))
	if err != nil {
		return nil, err
	}
	status := deliveryStatus(&p)
	headers, headersCTE := originalHeader(p.OriginalHeader)
	if p.OriginalMessage != nil {
		headers, headersCTE = originalMessage(p.OriginalMessage)
	}

	boundary := pickBoundary(msgID, human, status, headers)

	var b bytes.Buffer
	b.Grow(len(human) + len(status) + len(headers) + 1024)
	writeHeader(&b, &p, msgID, boundary)
	b.WriteString("\r\nThis is a MIME-encapsulated delivery status notification.\r\n")

	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n")
	b.WriteString("Content-Language: ja, en\r\n\r\n")
	b.Write(human)

	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: message/delivery-status\r\n\r\n")
	b.Write(status)

	if len(headers) > 0 {
		b.WriteString("\r\n--" + boundary + "\r\n")
		if p.OriginalMessage != nil {
			b.WriteString("Content-Type: message/rfc822\r\n")
		} else {
			b.WriteString("Content-Type: text/rfc822-headers\r\n")
		}
		if headersCTE != "" {
			b.WriteString("Content-Transfer-Encoding: " + headersCTE + "\r\n")
		}
		b.WriteString("\r\n")
		b.Write(headers)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// check validates what the caller controls: our host name, the envelope
// addresses, actions and status codes.
func (p *Params) check() error {
	var errs []error
	if err := checkHostname(p.ReportingMTA); err != nil {
		errs = append(errs, fmt.Errorf("dsn: ReportingMTA: %w", err))
	}
	if p.From != "" {
		if err := checkAddress(p.From); err != nil {
			errs = append(errs, fmt.Errorf("dsn: From: %w", err))
		}
	}
	switch strings.TrimSpace(p.To) {
	case "", "<>":
		errs = append(errs, errors.New("dsn: To: a notification is never sent to the null sender"))
	default:
		if err := checkAddress(p.To); err != nil {
			errs = append(errs, fmt.Errorf("dsn: To: %w", err))
		}
	}
	if len(p.Recipients) == 0 {
		errs = append(errs, errors.New("dsn: Recipients: none to report on"))
	}
	relayed := 0
	for _, r := range p.Recipients {
		if r.Action == Relayed {
			relayed++
		}
	}
	if relayed > 0 && relayed < len(p.Recipients) {
		errs = append(errs, errors.New("dsn: Recipients: relays are reported in a notification of their own"))
	}
	for i, r := range p.Recipients {
		if err := r.check(i); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Recipient) check(i int) error {
	if err := checkAddress(r.Final); err != nil {
		return fmt.Errorf("dsn: Recipients[%d].Final: %w", i, err)
	}
	if r.Action != Failed && r.Action != Delayed && r.Action != Relayed {
		return fmt.Errorf("dsn: Recipients[%d].Action %q: want %q, %q or %q", i, r.Action, Failed, Delayed, Relayed)
	}
	if err := checkStatus(r.Status); err != nil {
		return fmt.Errorf("dsn: Recipients[%d].Status: %w", i, err)
	}
	if r.Action == Failed && r.Status[0] == '2' {
		return fmt.Errorf("dsn: Recipients[%d].Status %q: a success code cannot report a failure", i, r.Status)
	}
	if r.Action == Relayed && r.Status[0] != '2' {
		return fmt.Errorf("dsn: Recipients[%d].Status %q: a relay is reported with a 2.x.x code", i, r.Status)
	}
	return nil
}

// checkStatus accepts an RFC 3463 code: class 2, 4 or 5, then two numbers of
// one to three digits.
func checkStatus(s string) error {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || strings.IndexByte("245", parts[0][0]) < 0 {
		return fmt.Errorf("%q is not an enhanced status code like 5.1.1", s)
	}
	for _, n := range parts[1:] {
		if len(n) < 1 || len(n) > 3 || strings.Trim(n, "0123456789") != "" {
			return fmt.Errorf("%q is not an enhanced status code like 5.1.1", s)
		}
	}
	return nil
}

// messageID normalizes the caller's Message-ID or makes a unique one.
func messageID(id, host string, date time.Time) (string, error) {
	if id == "" {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", fmt.Errorf("dsn: generating Message-ID: %w", err)
		}
		return "<" + strconv.FormatInt(date.UnixNano(), 36) + "." + hex.EncodeToString(r[:]) + "@" + host + ">", nil
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	at := strings.IndexByte(bare, '@')
	if at <= 0 || at == len(bare)-1 || !isPrintableASCII(bare) || strings.ContainsAny(bare, " <>\"") {
		return "", fmt.Errorf("dsn: MessageID %q: want <left@right> in printable US-ASCII", id)
	}
	return "<" + bare + ">", nil
}

// pickBoundary derives the boundary from the Message-ID, so the same
// Params always give the same bytes (golden tests), and makes sure it occurs
// in no part. Quoted-printable output cannot contain "=_", so only the raw
// header part can ever collide.
func pickBoundary(msgID string, parts ...[]byte) string {
	sum := sha256.Sum256([]byte(msgID))
	base := "=_sekisho_dsn_" + hex.EncodeToString(sum[:9])
	for n := 0; ; n++ {
		b := base
		if n > 0 {
			b += "_" + strconv.Itoa(n)
		}
		clash := false
		for _, p := range parts {
			if bytes.Contains(p, []byte("--"+b)) {
				clash = true
				break
			}
		}
		if !clash {
			return b
		}
	}
}

func writeHeader(b *bytes.Buffer, p *Params, msgID, boundary string) {
	b.WriteString("From: Mail Delivery System <" + wireAddress(p.From) + ">\r\n")
	b.WriteString("To: <" + wireAddress(p.To) + ">\r\n")
	ja, en := "配送不能のお知らせ", "Undelivered Mail Returned to Sender"
	switch {
	case allRelayed(p.Recipients):
		ja, en = "中継のお知らせ", "Relayed Mail (no further notice will follow)"
	case !anyFailed(p.Recipients):
		ja, en = "配送遅延のお知らせ", "Delayed Mail (still being retried)"
	}
	// The Japanese words are encoded; the English stays readable. The fold
	// keeps the line under 78 characters.
	b.WriteString("Subject: " + mime.BEncoding.Encode("utf-8", ja) + "\r\n / " + en + "\r\n")
	b.WriteString("Date: " + p.Date.Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: " + msgID + "\r\n")
	b.WriteString("Auto-Submitted: auto-replied\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/report; report-type=delivery-status;\r\n")
	b.WriteString("\tboundary=\"" + boundary + "\"\r\n")
}

func allRelayed(rs []Recipient) bool {
	for _, r := range rs {
		if r.Action != Relayed {
			return false
		}
	}
	return len(rs) > 0
}

func anyFailed(rs []Recipient) bool {
	for _, r := range rs {
		if r.Action == Failed {
			return true
		}
	}
	return false
}

// qpEncode encodes UTF-8 text with '\n' line ends as quoted-printable with
// CRLF line ends.
func qpEncode(text string) ([]byte, error) {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("dsn: encoding text: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("dsn: encoding text: %w", err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}
