package approval

import (
	"context"
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/relay/store"
)

// OutboundNotifier tells the people around a held message: its sender
// that it is held, an approver that it waits for them.
type OutboundNotifier interface {
	NotifyHeld(r store.Request) error
	AskApprover(ctx context.Context, r store.Request, approver string) error
}

const noticeTime = "2006-01-02 15:04"

// rcptList names a few recipients and counts the rest.
func rcptList(rcpts []string) (ja, en string) {
	const show = 5
	if len(rcpts) <= show {
		s := strings.Join(rcpts, ", ")
		return s, s
	}
	s := strings.Join(rcpts[:show], ", ")
	return fmt.Sprintf("%s ほか %d 件", s, len(rcpts)-show), fmt.Sprintf("%s and %d more", s, len(rcpts)-show)
}

// outboundNotice is the notice of what became of a held message.
func outboundNotice(r store.Request) notice {
	subj := subjectOf(r)
	toJA, toEN := rcptList(r.Recipients)
	decided := r.DecidedAt.Local().Format(noticeTime)
	switch {
	case r.State == store.StateCancelled:
		return notice{"メールの送信を取り消しました", "Your message was cancelled",
			fmt.Sprintf("「%s」（宛先 %s）の送信は %s に %s により取り消されました。このメールは送信されていません。", subj, toJA, decided, r.DecidedBy),
			fmt.Sprintf("Your message \"%s\" to %s was cancelled by %s at %s. It was not sent.", subj, toEN, r.DecidedBy, decided)}
	case r.State == store.StateDenied && r.DecidedBy == store.ExpiredBy:
		return notice{"承認期限までに承認されず、送信されませんでした", "Your message was not approved in time",
			fmt.Sprintf("「%s」（宛先 %s）は承認期限（%s）までに承認されなかったため、送信されませんでした。必要なら送り直してください。", subj, toJA, decided),
			fmt.Sprintf("Your message \"%s\" to %s was not approved before its deadline (%s) and was not sent. Send it again if it is still needed.", subj, toEN, decided)}
	case r.State == store.StateDenied:
		return notice{"メールの送信は承認されませんでした", "Your message was not approved",
			fmt.Sprintf("「%s」（宛先 %s）は %s に %s により却下されたため、送信されませんでした。", subj, toJA, decided, r.DecidedBy),
			fmt.Sprintf("Your message \"%s\" to %s was rejected by %s at %s and was not sent.", subj, toEN, r.DecidedBy, decided)}
	case r.State == store.StateDone:
		return notice{"メールは承認され、送信されました", "Your message was approved and sent",
			fmt.Sprintf("「%s」（宛先 %s）は %s に %s により承認され、送信されました（キューID %s）。", subj, toJA, decided, r.DecidedBy, r.Result),
			fmt.Sprintf("Your message \"%s\" to %s was approved by %s at %s and sent (queue ID %s).", subj, toEN, r.DecidedBy, decided, r.Result)}
	}
	return notice{"承認されたメールを送信できませんでした", "Your approved message could not be sent",
		fmt.Sprintf("「%s」（宛先 %s）は承認されましたが、送信できませんでした（%s）。管理者に連絡してください。", subj, toJA, r.Result),
		fmt.Sprintf("Your message \"%s\" to %s was approved but could not be sent (%s): please tell the administrator.", subj, toEN, r.Result)}
}

// NotifyHeld tells a held message's sender that it waits, until when and
// what they can do.
func (n *MailNotifier) NotifyHeld(r store.Request) error {
	subj := subjectOf(r)
	toJA, toEN := rcptList(r.Recipients)
	until := r.Expires.Local().Format(noticeTime)
	var t notice
	if r.Policy == PolicyHold {
		t = notice{"メールの送信を保留しています", "Your message is held before it is sent",
			fmt.Sprintf("「%s」（宛先 %s）は、誤送信防止のため %s まで送信を保留しています。その時刻に自動的に送信されます。\r\n"+
				"宛先や添付ファイルに誤りがあれば、それまでにコンソールの「保留中のメール」で取り消してください（すぐに送信することもできます）。", subj, toJA, until),
			fmt.Sprintf("Your message \"%s\" to %s is held until %s and will then be sent.\r\n"+
				"If a recipient or an attachment is wrong, cancel it before then under \"My held mail\" in the console (you may also send it at once).", subj, toEN, until)}
	} else {
		onJA, onEN := "送信されません", "it will not be sent"
		if r.OnExpiry == store.ExpirySend {
			onJA, onEN = "自動的に送信されます", "it will be sent"
		}
		t = notice{"メールは承認待ちです", "Your message waits for approval",
			fmt.Sprintf("「%s」（宛先 %s）は、ルール %s により承認グループ %s の承認を待っています。承認されると送信されます。\r\n"+
				"%s までに判断がない場合は%s。取り消すときはコンソールの「保留中のメール」から。", subj, toJA, r.Reason, r.Group, until, onJA),
			fmt.Sprintf("Your message \"%s\" to %s waits for an approver of group %s (rule %s) and is sent once approved.\r\n"+
				"Without a decision by %s, %s. To cancel it, use \"My held mail\" in the console.", subj, toEN, r.Group, r.Reason, until, onEN)}
	}
	body := t.ja + "\r\n\r\n" + t.en + "\r\n"
	if n.ConsoleURL != "" {
		body += "\r\n" + strings.TrimSuffix(n.ConsoleURL, "/") + "/my/held\r\n"
	}
	return n.send(r.Requester, n.compose(r.Requester, t, body, n.now()))
}

// AskApprover sends an approver the approval mail: who sent what to
// whom, and a signed link to decide.
func (n *MailNotifier) AskApprover(ctx context.Context, r store.Request, approver string) error {
	d := ParseOutboundDetail(r)
	subj := subjectOf(r)
	toJA, toEN := rcptList(r.Recipients)
	var files []string
	for _, a := range d.Attachments {
		if !a.Inline {
			files = append(files, fmt.Sprintf("%s (%d bytes)", oneLine(a.Name), a.Size))
		}
	}
	filesJA, filesEN := "なし", "none"
	if len(files) > 0 {
		filesJA = strings.Join(files, ", ")
		filesEN = filesJA
	}
	until := r.Expires.Local().Format(noticeTime)
	onJA, onEN := "送信されません", "it is not sent"
	if r.OnExpiry == store.ExpirySend {
		onJA, onEN = "自動的に送信されます", "it is sent"
	}
	t := notice{"承認依頼: " + subj, "Approval requested",
		fmt.Sprintf("%s さんが送信したメールが、承認グループ %s の承認を待っています（ルール %s）。\r\n"+
			"件名: %s\r\n宛先: %s\r\n添付ファイル: %s\r\n期限: %s（判断がなければ%s）", r.Requester, r.Group, r.Reason, subj, toJA, filesJA, until, onJA),
		fmt.Sprintf("A message from %s waits for an approver of group %s (rule %s).\r\n"+
			"Subject: %s\r\nTo: %s\r\nAttachments: %s\r\nDeadline: %s (without a decision, %s)", r.Requester, r.Group, r.Reason, subj, toEN, filesEN, until, onEN)}
	body := t.ja + "\r\n\r\n" + t.en + "\r\n"
	if base := strings.TrimSuffix(n.ConsoleURL, "/"); base != "" {
		if n.LinkKey != nil {
			key, err := n.LinkKey(ctx)
			if err != nil {
				return err
			}
			link := base + "/outbound/link/" + SignLink(key, r.ID, approver, r.Expires)
			body += "\r\n承認・却下 / Approve or reject:\r\n" + link + "\r\n"
		}
		body += "\r\nコンソール / Console: " + base + "/outbound/approve\r\n"
	}
	return n.send(approver, n.compose(approver, t, body, n.now()))
}

// NotifyBcc tells a sender that bcc_outside took outside addresses out of
// To and Cc of their message (queued as id).
func (n *MailNotifier) NotifyBcc(sender, subject, id string, moved []string, unreadable int) error {
	subject = oneLine(subject)
	if subject == "" {
		subject = "(件名なし / no subject)"
	}
	listJA, listEN := rcptList(moved)
	t := notice{"宛先の外部アドレスを BCC に移しました", "Outside recipients were moved to Bcc",
		fmt.Sprintf("「%s」の To と Cc にあった外部のアドレス %d 件（%s）を宛先欄から外し、BCC として送信しました。"+
			"受信者にはお互いのアドレスは見えません。宛先の全員に届きます。", subject, len(moved), listJA),
		fmt.Sprintf("%d outside addresses (%s) were taken out of To and Cc of your message \"%s\" and it was sent to them as Bcc: "+
			"every recipient gets it without seeing the others.", len(moved), listEN, subject)}
	if unreadable > 0 {
		t.ja += fmt.Sprintf("（読み取れない宛先欄 %d 個も外しました）", unreadable)
		t.en += fmt.Sprintf(" (%d To or Cc fields that could not be read were taken out too.)", unreadable)
	}
	body := t.ja + "\r\n\r\n" + t.en + "\r\n\r\nキューID / Queue ID: " + id + "\r\n"
	return n.send(sender, n.compose(sender, t, body, n.now()))
}
