package approval

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
)

// MailNotifier tells requesters by mail: a short bilingual notice from
// the postmaster, queued like a DSN (null sender, so that nothing answers
// it back).
type MailNotifier struct {
	Hostname   string
	Postmaster string
	// ConsoleURL, when set, is linked for following the request.
	ConsoleURL string
	Enqueue    func(env queue.Envelope, data []byte) (queue.ID, error)
	Now        func() time.Time
}

// Notify queues the notice for r's requester.
func (n *MailNotifier) Notify(r store.Request) error {
	now := time.Now()
	if n.Now != nil {
		now = n.Now()
	}
	data := n.Build(r, now)
	env := queue.Envelope{From: "", Rcpts: []queue.Recipient{{Addr: r.Requester, OrigAddr: r.Requester}},
		ReceivedAt: now, Source: rewrite.SourceInner, Helo: n.Hostname}
	_, err := n.Enqueue(env, data)
	return err
}

// Build writes the notice: RFC 5322 with a base64 UTF-8 body, so that
// every line is short and 7-bit whatever the comment holds.
func (n *MailNotifier) Build(r store.Request, now time.Time) []byte {
	var ja, en, subjJA, subjEN string
	decided := r.DecidedAt.Local().Format("2006-01-02 15:04")
	switch r.State {
	case store.StateDenied:
		subjJA, subjEN = "原本の受け取り申請は却下されました", "Your request for the original was denied"
		ja = fmt.Sprintf("隔離ID %s の原本の受け取り申請（申請番号 %d）は、%s に %s により却下されました。", r.Item, r.ID, decided, r.DecidedBy)
		en = fmt.Sprintf("Your request %d for the original of release ID %s was denied by %s at %s.", r.ID, r.Item, r.DecidedBy, decided)
	case store.StateDone:
		subjJA, subjEN = "原本の受け取り申請は承認されました", "Your request for the original was approved"
		ja = fmt.Sprintf("隔離ID %s の原本の受け取り申請（申請番号 %d）は、%s に %s により承認され、原本を %s 宛てに送りました（キューID %s）。",
			r.Item, r.ID, decided, r.DecidedBy, strings.Join(r.Recipients, ", "), r.Result)
		en = fmt.Sprintf("Your request %d for the original of release ID %s was approved by %s at %s; the original was sent to %s (queue ID %s).",
			r.ID, r.Item, r.DecidedBy, decided, strings.Join(r.Recipients, ", "), r.Result)
	default:
		subjJA, subjEN = "原本の受け取りに失敗しました", "The original could not be sent"
		ja = fmt.Sprintf("隔離ID %s の原本の受け取り申請（申請番号 %d）は承認されましたが、送信できませんでした。管理者に連絡してください。", r.Item, r.ID)
		en = fmt.Sprintf("Your request %d for the original of release ID %s was approved, but the original could not be sent: please tell the administrator.", r.ID, r.Item)
	}
	var body strings.Builder
	body.WriteString(ja + "\r\n")
	if r.Comment != "" && r.Policy == PolicyApproval {
		body.WriteString("コメント / Comment: " + oneLine(r.Comment) + "\r\n")
	}
	body.WriteString("\r\n" + en + "\r\n")
	if n.ConsoleURL != "" {
		body.WriteString("\r\n" + n.ConsoleURL + "\r\n")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", n.Postmaster)
	fmt.Fprintf(&b, "To: <%s>\r\n", r.Requester)
	// mime splits long text into several encoded words; each gets a
	// line of its own (RFC 2047 §2: at most 76 characters a word).
	subject := mime.BEncoding.Encode("utf-8", subjJA+" / "+subjEN)
	fmt.Fprintf(&b, "Subject: [sekisho]\r\n %s\r\n", strings.ReplaceAll(subject, "?= =?", "?=\r\n =?"))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%s@%s>\r\n", now.UTC().Format("20060102150405"), randHex(), n.Hostname)
	b.WriteString("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString([]byte(body.String()))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func randHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
