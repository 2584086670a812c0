package dsn

import (
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// timeLayout is how times appear in the human-readable part.
const timeLayout = "2006-01-02 15:04:05 -0700"

// maxSubjectRunes caps the quoted original subject.
const maxSubjectRunes = 120

// reason explains an enhanced status code to a person. Keys are
// "subject.detail" first, then "subject" alone (RFC 3463).
type reason struct{ ja, en string }

var reasons = map[string]reason{
	"1.1": {"宛先のメールアドレスが存在しません", "the recipient's mailbox does not exist"},
	"1.2": {"宛先のドメインが存在しないか、メールを受け付けていません", "the recipient's domain does not exist or does not accept mail"},
	"1.3": {"宛先のメールアドレスの形式が正しくありません", "the recipient address is malformed"},
	"1.6": {"宛先のメールアドレスは使われなくなりました", "the recipient's mailbox has moved or is no longer in use"},
	"1.7": {"差出人のメールアドレスの形式が正しくありません", "the sender address is malformed"},
	"1.8": {"差出人のメールアドレスのドメインが受け付けられません", "the sender's domain was not accepted"},
	"1":   {"宛先のメールアドレスに問題があります", "there is a problem with the recipient address"},
	"2.1": {"宛先のメールボックスが使用停止になっています", "the recipient's mailbox is disabled"},
	"2.2": {"宛先のメールボックスが満杯です", "the recipient's mailbox is full"},
	"2.3": {"メールのサイズが宛先の上限を超えています", "the message is larger than the recipient accepts"},
	"2":   {"宛先のメールボックスに問題があります", "there is a problem with the recipient's mailbox"},
	"3.4": {"メールのサイズが相手サーバーの上限を超えています", "the message is larger than the receiving server accepts"},
	"3":   {"相手のメールシステムに問題があります", "the receiving mail system has a problem"},
	"4.1": {"相手サーバーが応答しませんでした", "the receiving server did not answer"},
	"4.2": {"相手サーバーとの接続が途中で切れました", "the connection to the receiving server was lost"},
	"4.3": {"宛先ドメインの名前解決 (DNS) に失敗しました", "looking up the recipient's domain in the DNS failed"},
	"4.4": {"宛先ドメインへの配送経路が見つかりません", "no route to the recipient's domain was found"},
	"4.6": {"配送経路がループしています", "the message was caught in a mail routing loop"},
	"4.7": {"配送期限を過ぎました", "the message could not be delivered within the time limit"},
	"4":   {"ネットワークまたは配送経路に問題があります", "there is a network or routing problem"},
	"5":   {"相手サーバーとのやり取りでエラーが発生しました", "the exchange with the receiving server failed"},
	"6.3": {"相手サーバーが 8 ビットの本文を受け付けません", "the receiving server does not accept 8-bit message content"},
	"6.7": {"相手サーバーが日本語などを含むメールアドレスを扱えません", "the receiving server does not accept non-ASCII addresses"},
	"6":   {"メールの形式または内容が受け付けられませんでした", "the message format or content was not accepted"},
	"7.1": {"配送が相手側の方針により拒否されました", "delivery was refused by the receiving side's policy"},
	"7":   {"セキュリティまたは方針上の理由で配送できませんでした", "delivery was refused for security or policy reasons"},
}

// explain returns the Japanese and English reason for a status code.
func explain(status string) (ja, en string) {
	if strings.HasPrefix(status, "2") {
		return "配送通知に対応していない次のメールシステムに引き渡しました", "handed over to a next mail system that does not send delivery notifications"
	}
	parts := strings.SplitN(status, ".", 3)
	if len(parts) == 3 {
		if r, ok := reasons[parts[1]+"."+parts[2]]; ok {
			return r.ja, r.en
		}
		if r, ok := reasons[parts[1]]; ok {
			return r.ja, r.en
		}
	}
	if strings.HasPrefix(status, "4") {
		return "一時的な問題で配送できていません", "delivery is temporarily not possible"
	}
	return "配送できませんでした", "the message could not be delivered"
}

// humanText is the text/plain part: Japanese first (the readers are
// Japanese municipal staff), then the same in English.
func humanText(p *Params) string {
	loc := p.Date.Location()
	failed, delayed, relayed := 0, 0, 0
	for _, r := range p.Recipients {
		switch r.Action {
		case Failed:
			failed++
		case Relayed:
			relayed++
		default:
			delayed++
		}
	}
	subject := originalSubject(p.OriginalHeader)
	hasHeader := len(p.OriginalHeader) > 0 && p.OriginalMessage == nil
	hasMessage := len(p.OriginalMessage) > 0

	var b strings.Builder
	fmt.Fprintf(&b, "このメールは %s のメールシステムが自動で送信しています。\n", p.ReportingMTA)
	b.WriteString("(English text follows the Japanese.)\n\n")
	switch {
	case relayed > 0:
		b.WriteString("お送りいただいたメールを、次の宛先に向けて中継しました。\n")
		b.WriteString("中継先は配送通知に対応していないため、これ以降の配送結果はお知らせできません。\n")
	case delayed == 0:
		b.WriteString("お送りいただいたメールを、次の宛先に配送できませんでした。\n")
	case failed == 0:
		b.WriteString("お送りいただいたメールは、次の宛先にまだ配送されていません。\n")
		b.WriteString("配送は引き続き試みていますので、送り直す必要はありません。\n")
	default:
		b.WriteString("お送りいただいたメールは、次の宛先のうち一部に配送できず、\n")
		b.WriteString("残りの宛先への配送は遅れています。\n")
	}
	b.WriteString("宛先ごとの結果を下に示します。")
	if hasHeader {
		b.WriteString("元のメールのヘッダーを添付しています。")
	}
	if hasMessage {
		b.WriteString("元のメールを添付しています。")
	}
	b.WriteString("\n\n")
	if subject != "" {
		fmt.Fprintf(&b, "  件名: %s\n", subject)
	}
	if !p.ArrivalDate.IsZero() {
		fmt.Fprintf(&b, "  受付日時: %s\n", p.ArrivalDate.In(loc).Format(timeLayout))
	}
	for _, r := range p.Recipients {
		ja, _ := explain(r.Status)
		fmt.Fprintf(&b, "\n<%s>\n", sanitizeText(wireAddress(r.Final)))
		if r.Action == Relayed {
			b.WriteString("  結果: 中継しました (これ以降の通知はありません)\n")
		} else if r.Action == Failed {
			b.WriteString("  結果: 配送できませんでした\n")
		} else if !r.WillRetryUntil.IsZero() {
			fmt.Fprintf(&b, "  結果: 配送が遅れています (%s まで再送を続けます)\n", r.WillRetryUntil.In(loc).Format(timeLayout))
		} else {
			b.WriteString("  結果: 配送が遅れています (再送を続けます)\n")
		}
		fmt.Fprintf(&b, "  理由: %s (%s)\n", ja, r.Status)
		if mta := untyped(r.RemoteMTA); mta != "" {
			fmt.Fprintf(&b, "  相手サーバー: %s\n", mta)
		}
		if diag, remote := diagnostic(r.DiagnosticCode); remote {
			fmt.Fprintf(&b, "  相手サーバーの応答: %s\n", diag)
		} else if diag != "" {
			fmt.Fprintf(&b, "  詳細: %s\n", diag)
		}
	}
	b.WriteString("\nご不明な点は、システム管理者にお問い合わせください。\n")

	b.WriteString("\n" + strings.Repeat("-", 64) + "\n\n")

	fmt.Fprintf(&b, "This is the mail system at host %s.\n\n", p.ReportingMTA)
	switch {
	case relayed > 0:
		b.WriteString("Your message was relayed towards the recipients below. The next mail\n")
		b.WriteString("system does not send delivery notifications, so no further notice of\n")
		b.WriteString("its delivery will follow.\n")
	case delayed == 0:
		b.WriteString("Your message could not be delivered to the recipients below.\n")
	case failed == 0:
		b.WriteString("Your message has not yet been delivered to the recipients below.\n")
		b.WriteString("Delivery is still being attempted; you do not need to send it again.\n")
	default:
		b.WriteString("Your message could not be delivered to some of the recipients below,\n")
		b.WriteString("and delivery to the others is delayed.\n")
	}
	b.WriteString("The result for each recipient is given below.")
	if hasHeader {
		b.WriteString(" The original message\nheader is attached.")
	}
	if hasMessage {
		b.WriteString(" The original message\nis attached.")
	}
	b.WriteString("\n\n")
	if subject != "" {
		fmt.Fprintf(&b, "  Subject: %s\n", subject)
	}
	if !p.ArrivalDate.IsZero() {
		fmt.Fprintf(&b, "  Received: %s\n", p.ArrivalDate.In(loc).Format(timeLayout))
	}
	for _, r := range p.Recipients {
		_, en := explain(r.Status)
		fmt.Fprintf(&b, "\n<%s>\n", sanitizeText(wireAddress(r.Final)))
		if r.Action == Relayed {
			b.WriteString("  Result: relayed (no further notice will follow)\n")
		} else if r.Action == Failed {
			b.WriteString("  Result: not delivered\n")
		} else if !r.WillRetryUntil.IsZero() {
			fmt.Fprintf(&b, "  Result: delayed (retrying until %s)\n", r.WillRetryUntil.In(loc).Format(timeLayout))
		} else {
			b.WriteString("  Result: delayed (still retrying)\n")
		}
		fmt.Fprintf(&b, "  Reason: %s (%s)\n", en, r.Status)
		if mta := untyped(r.RemoteMTA); mta != "" {
			fmt.Fprintf(&b, "  Remote server: %s\n", mta)
		}
		if diag, remote := diagnostic(r.DiagnosticCode); remote {
			fmt.Fprintf(&b, "  Remote reply: %s\n", diag)
		} else if diag != "" {
			fmt.Fprintf(&b, "  Details: %s\n", diag)
		}
	}
	b.WriteString("\nIf you need help, please contact your system administrator.\n")
	return b.String()
}

// diagnostic returns the Diagnostic-Code for people and whether it is a
// remote server's reply (type smtp) rather than our own explanation.
func diagnostic(v string) (string, bool) {
	typed := typedValue(sanitizeText(v), diagnosticType(v))
	return untyped(v), strings.HasPrefix(strings.ToLower(typed), "smtp;")
}

// untyped strips the "dns; " or "smtp; " type from a field for people.
func untyped(v string) string {
	v = sanitizeText(v)
	if i := strings.IndexByte(v, ';'); i > 0 && isAtom(strings.TrimSpace(v[:i])) {
		v = strings.TrimSpace(v[i+1:])
	}
	return v
}

// originalSubject decodes the original Subject for display: RFC 2047
// encoded-words (ISO-2022-JP included) and raw ISO-2022-JP; undecodable
// bytes become '?'.
func originalSubject(header []byte) string {
	raw, ok := headerField(header, "Subject")
	if !ok {
		return ""
	}
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	s, err := dec.DecodeHeader(raw)
	if err != nil {
		s = raw
	}
	if strings.Contains(s, "\x1b") {
		if r, err := charset.Reader("iso-2022-jp", strings.NewReader(s)); err == nil {
			if d, err := io.ReadAll(r); err == nil {
				s = string(d)
			}
		}
	}
	s = sanitizeText(s)
	if utf8.RuneCountInString(s) > maxSubjectRunes {
		s = string([]rune(s)[:maxSubjectRunes]) + "…"
	}
	return s
}
