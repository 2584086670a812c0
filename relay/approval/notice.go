package approval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
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
	// LinkKey returns the key of the approval mail's signed links; nil:
	// the mail has none.
	LinkKey func(ctx context.Context) ([]byte, error)
}

// Notify queues the notice for r's requester.
func (n *MailNotifier) Notify(r store.Request) error {
	return n.send(r.Requester, n.Build(r, n.now()))
}

func (n *MailNotifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// send queues a notice for one address.
func (n *MailNotifier) send(to string, data []byte) error {
	env := queue.Envelope{From: "", Rcpts: []queue.Recipient{{Addr: to, OrigAddr: to}},
		ReceivedAt: n.now(), Source: rewrite.SourceInner, Helo: n.Hostname}
	_, err := n.Enqueue(env, data)
	return err
}

// notice is the text of one notice, in both languages.
type notice struct {
	subjJA, subjEN string
	ja, en         string
}

// Build writes the notice of what became of r.
func (n *MailNotifier) Build(r store.Request, now time.Time) []byte {
	t := releaseNotice(r)
	switch r.Kind {
	case store.KindOutbound:
		t = outboundNotice(r)
	case store.KindUnlock:
		t = unlockNotice(r)
	}
	var body strings.Builder
	body.WriteString(t.ja + "\r\n")
	if r.Comment != "" && r.DecidedBy != r.Requester && r.DecidedBy != store.ExpiredBy && (r.Policy == PolicyApproval || r.Kind == store.KindOutbound) {
		body.WriteString("コメント / Comment: " + oneLine(r.Comment) + "\r\n")
	}
	body.WriteString("\r\n" + t.en + "\r\n")
	if n.ConsoleURL != "" {
		body.WriteString("\r\n" + n.ConsoleURL + "\r\n")
	}
	return n.compose(r.Requester, t, body.String(), now)
}

func releaseNotice(r store.Request) notice {
	decided := r.DecidedAt.Local().Format("2006-01-02 15:04")
	switch r.State {
	case store.StateDenied:
		return notice{"原本の受け取り申請は却下されました", "Your request for the original was denied",
			fmt.Sprintf("隔離ID %s の原本の受け取り申請（申請番号 %d）は、%s に %s により却下されました。", r.Item, r.ID, decided, r.DecidedBy),
			fmt.Sprintf("Your request %d for the original of release ID %s was denied by %s at %s.", r.ID, r.Item, r.DecidedBy, decided)}
	case store.StateDone:
		return notice{"原本の受け取り申請は承認されました", "Your request for the original was approved",
			fmt.Sprintf("隔離ID %s の原本の受け取り申請（申請番号 %d）は、%s に %s により承認され、原本を %s 宛てに送りました（キューID %s）。",
				r.Item, r.ID, decided, r.DecidedBy, strings.Join(r.Recipients, ", "), r.Result),
			fmt.Sprintf("Your request %d for the original of release ID %s was approved by %s at %s; the original was sent to %s (queue ID %s).",
				r.ID, r.Item, r.DecidedBy, decided, strings.Join(r.Recipients, ", "), r.Result)}
	}
	return notice{"原本の受け取りに失敗しました", "The original could not be sent",
		fmt.Sprintf("隔離ID %s の原本の受け取り申請（申請番号 %d）は承認されましたが、送信できませんでした。管理者に連絡してください。", r.Item, r.ID),
		fmt.Sprintf("Your request %d for the original of release ID %s was approved, but the original could not be sent: please tell the administrator.", r.ID, r.Item)}
}

// unlockNotice is the notice of an opened archive whose files could not
// be sent (a success is told by the follow-up itself).
func unlockNotice(r store.Request) notice {
	return notice{"パスワード付きファイルを送れませんでした", "The files of the archive could not be sent",
		fmt.Sprintf("隔離ID %s のパスワード付きファイルは開けましたが、中のファイルを送れませんでした（%s）。管理者に連絡してください。", r.Item, r.Result),
		fmt.Sprintf("The password-protected archive of release ID %s was opened, but its files could not be sent (%s): please tell the administrator.", r.Item, r.Result)}
}

// compose writes a notice: RFC 5322 with a base64 UTF-8 body, so that
// every line is short and 7-bit whatever the text holds.
func (n *MailNotifier) compose(to string, t notice, body string, now time.Time) []byte {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	writeHeader(bw, n.Postmaster, to, t.subjJA+" / "+t.subjEN, n.Hostname, now)
	bw.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	sanitize.WriteBase64(bw, strings.NewReader(body))
	bw.Flush()
	return b.Bytes()
}

// writeHeader writes the header fields every mail of ours carries, up to
// MIME-Version: the recipient's local part quoted as SMTP wants it, the
// subject after a "[sekisho]" tag in encoded words of a line each (RFC
// 2047 §2: at most 76 characters a word).
func writeHeader(w *bufio.Writer, from, to, subject, hostname string, now time.Time) {
	if local, domain, ok := addr.Split(to); ok {
		to = addr.QuoteLocal(local) + "@" + domain
	}
	fmt.Fprintf(w, "From: %s\r\nTo: <%s>\r\n", from, to)
	fmt.Fprintf(w, "Subject: [sekisho]\r\n %s\r\n", strings.ReplaceAll(mime.BEncoding.Encode("utf-8", subject), "?= =?", "?=\r\n =?"))
	fmt.Fprintf(w, "Date: %s\r\nMessage-ID: <%s.%s@%s>\r\n", now.Format(time.RFC1123Z), now.UTC().Format("20060102150405"),
		randHex(), hostname)
	w.WriteString("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func randHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
