package console

// The held-mail pages' words (outbound.go), Japanese first.
var outboundMessages = map[string][2]string{
	"title.my_held":          {"保留中のメール", "My held mail"},
	"title.outbound_approve": {"送信の承認", "Outgoing mail to approve"},
	"title.outbound":         {"保留中の送信メール", "Held outgoing message"},
	"title.outbound_history": {"送信保留の履歴", "Held mail history"},
	"nav.my_held":            {"保留中のメール", "My held mail"},
	"nav.outbound_approve":   {"送信の承認", "Approve sending"},
	"nav.outbound_history":   {"送信保留", "Held mail"},

	"col.sent":  {"送信日時", "Sent"},
	"col.until": {"期限", "Until"},

	"held.intro":          {"誤送信防止のため保留されている、あなたが送信したメールです。宛先や添付ファイルに誤りがあれば取り消してください。", "Mail you sent that is held before it goes out. Cancel it if a recipient or an attachment is wrong."},
	"held.none":           {"保留中のメールはありません。", "No held mail."},
	"held.none_all":       {"送信保留の記録はありません。", "No held mail recorded."},
	"held.no_subject":     {"（件名なし）", "(no subject)"},
	"held.group":          {"承認グループ %s", "group %s"},
	"held.state.holding":  {"保留中", "held"},
	"held.state.waiting":  {"承認待ち", "waiting for approval"},
	"held.state.sent":     {"送信済み", "sent"},
	"held.state.rejected": {"却下（送信されていません）", "rejected (not sent)"},
	"held.state.expired":  {"期限切れ（送信されていません）", "expired (not sent)"},
	"held.send_now":       {"すぐに送信", "Send now"},
	"held.cancel":         {"送信を取り消す", "Cancel sending"},
	"held.approve":        {"承認して送信", "Approve and send"},
	"held.reject":         {"却下", "Reject"},
	"held.files":          {"添付ファイル", "Attachments"},
	"held.no_files":       {"なし", "none"},
	"held.inline":         {"本文中の画像", "image in the text"},
	"held.unread":         {"ほかに読まなかったパート %d 個", "%d more parts not read"},
	"held.text":           {"本文", "Text"},
	"held.envelope_from":  {"送信者（エンベロープ）", "Sender (envelope)"},
	"held.envelope_to":    {"宛先（エンベロープ、BCC を含む）", "Recipients (envelope, Bcc included)"},
	"held.then_send":      {"判断がなければ送信", "then sent without a decision"},
	"held.then_reject":    {"判断がなければ送信しない", "then not sent without a decision"},
	"held.by_deadline":    {"%s に期限が来ました", "the deadline came at %s"},
	"held.by_sender":      {"%s に送信者が操作", "by the sender at %s"},
	"held.bcc_moved":      {"BCC に移した宛先", "Moved to Bcc"},
	"held.copy_to":        {"写しの送り先", "Copy to"},

	"appr.outbound_groups": {"あなたが承認する承認グループ: %s", "You decide for: %s"},
	"absence.title":        {"不在の設定", "Absence"},
	"absence.intro":        {"不在のあいだ、承認依頼のメールは代理承認者に届きます。", "While you are away, the approval mail goes to the delegates."},
	"absence.until":        {"この日まで不在", "Away until"},
	"absence.set":          {"不在にする", "Set absence"},
	"absence.back":         {"戻りました（不在を解除）", "I am back"},
	"absence.away_until":   {"%s まで不在に設定しています。", "You are away until %s."},

	"link.as": {"%s さんへの承認依頼のリンクから開いています。", "Opened from the approval mail to %s."},

	"err.bad_date": {"日付を正しく入力してください（今日以降）。", "Please give a date, today or later."},
	"err.bad_link": {"このリンクは使えません（期限切れか、承認者ではありません）。コンソールにサインインして操作してください。", "This link cannot be used (expired, or you no longer approve for this group). Sign in to the console instead."},

	"done.outbound_approve": {"承認しました。メールを送信します。", "Approved: the message is being sent."},
	"done.outbound_reject":  {"却下しました。メールは送信されず、送信者に知らせます。", "Rejected: the message is not sent and its sender is told."},
	"done.outbound_send":    {"すぐに送信します。", "The message is being sent now."},
	"done.outbound_cancel":  {"送信を取り消しました。メールは送信されません。", "Cancelled: the message will not be sent."},
	"done.absence":          {"不在の設定を変更しました。", "Your absence was updated."},
}

func init() {
	for k, v := range outboundMessages {
		if _, dup := messages[k]; dup {
			panic("console: message " + k + " is defined twice")
		}
		messages[k] = v
	}
}
