package sanitize

import (
	"fmt"
	"strings"
)

// notice is the Japanese and English text put before the body when
// anything was taken out, so the recipient knows what existed and how to
// ask for it.
func (wk *walker) notice() string {
	r := wk.rep
	if !r.Changed() && len(r.Kept) == 0 {
		return ""
	}
	var b strings.Builder
	line := "────────────────────────────────\n"
	b.WriteString(line)
	b.WriteString("【無害化のお知らせ / Sanitization notice】\n")
	b.WriteString("このメールはインターネットから届いたため、安全のため加工しました。\n")
	b.WriteString("This message came from the internet and was made safe before delivery.\n")
	if r.Unparseable {
		b.WriteString("・メールとして読める部分がないため、本文と添付ファイルを表示できません。\n")
		b.WriteString("  Nothing of this message can be shown; its content is withheld.\n")
		b.WriteString("  理由 / Why: " + r.ParseError + "\n")
	}
	if r.HTMLConverted {
		b.WriteString("・HTML形式の本文をテキストに変換しました。\n")
		b.WriteString("  The HTML body was converted to plain text.\n")
	}
	if r.Replaced > 0 {
		b.WriteString(fmt.Sprintf("・文字コードの都合で表示できない文字 %d 個を〓に置き換えました。\n", r.Replaced))
		b.WriteString(fmt.Sprintf("  %d characters the charset cannot show were replaced by 〓.\n", r.Replaced))
	}
	if r.Unread > 0 {
		b.WriteString(fmt.Sprintf("・添付などの部分が多すぎるため、%d 個を読まずに除きました。\n", r.Unread))
		b.WriteString(fmt.Sprintf("  %d parts past the limit of %d were left out unread.\n", r.Unread, maxParts))
	}
	if len(r.HeaderDropped) > 0 {
		b.WriteString("・メールのヘッダが長すぎるため、次の項目を除きました / These header fields were left out:\n")
		for _, d := range r.HeaderDropped {
			b.WriteString("  " + wk.shown(d, 100) + "\n")
		}
	}
	if r.Truncated {
		b.WriteString("・本文が長すぎるため、途中で切りました。\n")
		b.WriteString("  The text was too long and was cut.\n")
	}
	if len(r.Removed) > 0 {
		b.WriteString("・次の添付ファイルを削除しました / These attachments were removed:\n")
		for i, a := range r.Removed {
			b.WriteString(fmt.Sprintf("  %d. %s (%s, %s)\n", i+1, wk.displayName(a), sizeText(a.Size), wk.typeText(a)))
		}
	}
	if len(r.Converted) > 0 {
		b.WriteString("・次の添付ファイルは安全な形式に作り直しました / These attachments were rebuilt in a safe form:\n")
		for i, a := range r.Converted {
			b.WriteString(fmt.Sprintf("  %d. %s → %s (%s)\n", i+1, wk.displayName(a), wk.shown(a.As, maxNameRunes), convertedText(a)))
		}
	}
	if len(r.Held) > 0 {
		b.WriteString("・次のパスワード付きファイルは保管しています / These password-protected archives are held:\n")
		for i, a := range r.Held {
			b.WriteString(fmt.Sprintf("  %d. %s (%s)\n", i+1, wk.displayName(a), sizeText(a.Size)))
		}
		b.WriteString("  管理コンソールでパスワードを入力すると、中のファイルを安全な形式に作り直してお送りします。\n")
		b.WriteString("  Type the password in the console and its files are sent to you, rebuilt in a safe form.\n")
		if wk.o.ConsoleURL != "" {
			// Our own address, not the sender's: written as it is.
			b.WriteString("  " + wk.o.ConsoleURL + "\n")
		}
	}
	if len(r.Kept) > 0 {
		b.WriteString("・次の添付ファイルは許可された形式のため残しました / These attachments were kept:\n")
		for i, a := range r.Kept {
			b.WriteString(fmt.Sprintf("  %d. %s (%s, %s)\n", i+1, wk.displayName(a), sizeText(a.Size), wk.shown(a.Detected, 80)))
		}
	}
	if r.Changed() && wk.o.ReleaseID != "" {
		if !wk.o.KeepUntil.IsZero() {
			day := wk.o.KeepUntil.Format("2006-01-02")
			b.WriteString(fmt.Sprintf("原本は %s まで保管しています。必要な場合は管理者に次の ID をお知らせください。\n", day))
			b.WriteString(fmt.Sprintf("The original is kept until %s. To receive it, give your administrator this ID:\n", day))
		} else {
			b.WriteString("原本は保管しています。必要な場合は管理者に次の ID をお知らせください。\n")
			b.WriteString("The original is kept. To receive it, give your administrator this ID:\n")
		}
		b.WriteString("  隔離ID / Release ID: " + wk.o.ReleaseID + "\n")
	}
	b.WriteString(line)
	b.WriteString("\n")
	return b.String()
}

// convertedText says what a converted attachment became.
func convertedText(a Attachment) string {
	switch a.Action {
	case ActionImagePDF:
		if a.Pages > 0 {
			return fmt.Sprintf("画像のみのPDF %d ページ / image-only PDF, %d pages, %s", a.Pages, a.Pages, sizeText(a.AsSize))
		}
		return "画像のみのPDF / image-only PDF"
	case ActionText:
		return "テキストのみ / text only"
	}
	return "画像を再作成、付加情報を削除 / image re-encoded, metadata removed"
}

// shown is a value from the message as the notice may carry it: one
// line, no control or bidirectional characters, capped, links defanged
// (whatever relay.sanitize.links says: the notice is ours, and nothing in
// it may be a link the sender chose).
func (wk *walker) shown(v string, n int) string {
	return defangText(capText(cleanText(v), n))
}

func (wk *walker) displayName(a Attachment) string {
	name := wk.shown(a.Name, maxNameRunes)
	if name == "" {
		name = "(名前なし / no name)"
	}
	if a.Inline {
		name += " [本文中の画像 / inline image]"
	}
	return name
}

// sizeText shows a size the way a mail client would.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// typeText gives the detected type, and the declared one when it differs
// (a mismatch is worth knowing: it is how malware hides).
func (wk *walker) typeText(a Attachment) string {
	s := wk.shown(a.Detected, 80)
	if a.Declared != "" && !strings.EqualFold(a.Declared, a.Detected) {
		s += ", 申告 / declared " + wk.shown(a.Declared, 80)
	}
	if a.Reason != "" {
		s += "; " + wk.shown(a.Reason, 200)
	}
	return s
}
