package sanitize

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// A probe per defect the issue found on real mail: each failed before the
// reader was made tolerant and the writer careful.

var allowPDFPNGCSV = Options{AllowTypes: []string{"application/pdf", "image/png", "text/plain", TypeDOCX},
	AllowExtensions: []string{"pdf", "png", "csv", "docx"}}

type probe struct {
	name     string
	opts     Options
	msg      string
	contains []string // in the rendered output
	absent   []string // not in the rendered output
	check    func(t *testing.T, rep *Report, raw string)
}

func kept(names ...string) func(*testing.T, *Report, string) {
	return func(t *testing.T, rep *Report, _ string) {
		t.Helper()
		var got []string
		for _, a := range rep.Kept {
			got = append(got, a.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(names) {
			t.Errorf("kept %q, want %q (removed %+v)", got, names, rep.Removed)
		}
	}
}

func removedCode(name, code string) func(*testing.T, *Report, string) {
	return func(t *testing.T, rep *Report, _ string) {
		t.Helper()
		for _, a := range rep.Removed {
			if a.Name == name {
				if a.Code != code {
					t.Errorf("%s removed with code %q (%s), want %q", name, a.Code, a.Reason, code)
				}
				return
			}
		}
		t.Errorf("%s not removed: removed %+v kept %+v", name, rep.Removed, rep.Kept)
	}
}

func probes() []probe {
	mixed := func(boundary, parts string) string {
		return "From: a@example.com\nTo: b@city.example.lg.jp\nSubject: probe\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" +
			boundary + "\"\n\n" + parts
	}
	att := func(b, name, ctype, content string) string {
		return "--" + b + "\nContent-Type: " + ctype + "\nContent-Disposition: attachment; " + name + "\nContent-Transfer-Encoding: base64\n\n" + b64(content) + "\n"
	}
	text := func(b, s string) string { return "--" + b + "\nContent-Type: text/plain; charset=utf-8\n\n" + s + "\n" }
	return []probe{
		// Tolerant reading.
		{name: "closing boundary missing", msg: mixed("b", text("b", "本文です")+att("b", `filename="a.pdf"`, "application/pdf", pdf)),
			opts: allowPDFPNGCSV, contains: []string{"本文です"}, check: kept("a.pdf")},
		{name: "inner closing boundary missing (docomo decomail)", msg: mixed("o", "--o\nContent-Type: multipart/related; boundary=\"r\"\n\n--r\nContent-Type: text/html; charset=utf-8\n\n<p>デコメです</p>\n--r\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n\n"+b64("GIF89a\x01\x00")+"\n--r\n--o--\n"),
			contains: []string{"デコメです"}},
		{name: "byte order mark before the first field", msg: "\ufeffFrom: a@example.com\nSubject: =?UTF-8?B?5Lu25ZCN?=\nContent-Type: text/html; charset=utf-8\n\n<p>BOM のあるメール</p>\n",
			contains: []string{"BOM のあるメール", "Subject: =?UTF-8?B?5Lu25ZCN?="}, absent: []string{"<p>"}},
		{name: "obsolete white space before the colon", msg: "From : a@example.com\nSubject : obsolete\nContent-Type : text/html; charset=utf-8\n\n<b>obs syntax</b>\n",
			contains: []string{"obs syntax"}, absent: []string{"<b>"}},
		{name: "a folded line before the first field", msg: "  folded line with no field\nFrom: a@example.com\nContent-Type: text/html; charset=utf-8\n\n<b>after a stray fold</b>\n",
			contains: []string{"after a stray fold"}, absent: []string{"<b>"}},
		{name: "a header line without a colon", msg: "From: a@example.com\nContent-Type: text/html; charset=utf-8\nThis line is no field\n\n<b>the body</b>\n",
			contains: []string{"This line is no field", "the body"}, absent: []string{"<b>"}},
		{name: "broken embedded message", msg: mixed("b", text("b", "外側の本文")+"--b\nContent-Type: message/rfc822\n\n\x00\x01garbage without a header\n--b--\n"),
			contains: []string{"外側の本文"}, check: removedCode("", CodeBroken)},
		{name: "doubled boundary", msg: mixed("b", "--b\n--b\nContent-Type: text/plain\n\nafter a doubled boundary\n--b--\n"),
			contains: []string{"after a doubled boundary"}},
		{name: "a line that looks like a boundary", msg: mixed("b", text("b", "--b-not-a-delimiter\n--bb\nstill text")+"--b--\n"),
			contains: []string{"--b-not-a-delimiter", "still text"}},
		{name: "unquoted boundary holding =", msg: strings.Replace(mixed("----=_NextPart_000_0001", text("----=_NextPart_000_0001", "NextPart の本文")+"------=_NextPart_000_0001--\n"), `boundary="----=_NextPart_000_0001"`, "boundary=----=_NextPart_000_0001", 1),
			contains: []string{"NextPart の本文"}},
		{name: "empty parameters", msg: strings.Replace(mixed("b", text("b", "二重のセミコロン")+"--b--\n"), "multipart/mixed;", "multipart/mixed;; ;", 1),
			contains: []string{"二重のセミコロン"}},
		{name: "multipart without a boundary", msg: "From: a@example.com\nContent-Type: multipart/mixed\n\n--xyz\nContent-Type: text/plain\n\nguessed boundary\n--xyz--\n",
			contains: []string{"guessed boundary"}, absent: []string{"--xyz"}},
		{name: "multipart without parts", msg: "From: a@example.com\nContent-Type: multipart/alternative; boundary=\"q\"\n\njust text, no parts\n",
			contains: []string{"just text, no parts"}},
		{name: "boundary longer than go-message's buffer", msg: mixed(strings.Repeat("L", 5000), text(strings.Repeat("L", 5000), "長い境界")+"--"+strings.Repeat("L", 5000)+"--\n"),
			contains: []string{"長い境界"}},
		{name: "parameter without a value on a body", msg: "From: a@example.com\nContent-Type: text/plain; charset=shift_jis; format\nContent-Transfer-Encoding: 8bit\n\n" + sjis("値のない引数") + "\n",
			contains: []string{"値のない引数"}, check: kept()},
		{name: "inline text with a file name", msg: mixed("b", "--b\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: inline; filename=\"note.txt\"\n\nインラインの本文\n--b--\n"),
			contains: []string{"インラインの本文"}, check: func(t *testing.T, rep *Report, _ string) {
				if len(rep.Removed) != 0 {
					t.Errorf("removed %+v", rep.Removed)
				}
			}},

		// Found on the third-party corpus (mail-parser, mikel/mail,
		// mime4j): obsolete syntax and old charsets mail clients read.
		{name: "an obsolete From field first is no mbox line", msg: "From  : John Doe <jdoe@example.com>\nTo: b@example.jp\nSubject: obs\n\nhello\n",
			contains: []string{"From: John Doe <jdoe@example.com>", "hello"}},
		{name: "an mbox line first is skipped", msg: "From jdoe@example.com Fri Nov 21 09:55:06 1997\nFrom: a@example.com\nSubject: mbox\n\nhello\n",
			contains: []string{"From: a@example.com", "hello"}, absent: []string{"1997"}},
		{name: "a fold of white space only", msg: "From: a@example.com\nSubject: Re: TEST\n \n\t=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\nTo: b@example.jp\nContent-Type: text/plain; charset=iso-2022-jp\n\nHello\n",
			contains: []string{"To: b@example.jp", "Hello"}, absent: []string{"Content-Type: text/plain; charset=iso-2022-jp"},
			check: func(t *testing.T, rep *Report, _ string) {
				if rep.Subject != "Re: TEST テスト" {
					t.Errorf("Subject %q", rep.Subject)
				}
			}},
		{name: "a line of white space only before the body", msg: "From: a@example.com\nSubject: s\n  \nNote: the body's first line\n",
			contains: []string{"Note: the body's first line"}, absent: []string{"Note: the body's first line\nX-Sekisho"}},
		{name: "field names written without white space before the colon", msg: "From : a@example.com\nSubject\t : obsolete\n\nbody\n",
			contains: []string{"From: a@example.com\n", "Subject: obsolete\n"}},
		{name: "UTF-7 (Outlook 2000)", msg: "From: a@example.com\nSubject: =?utf-7?Q?Die_Hasen_und_die_Fr+APY-sche?=\nContent-Type: text/plain; charset=\"utf-7\"\n\nDie Hasen klagten einst +APw-ber ihre mi+AN8-liche Lage+ADs- 1 +- 1 +ZeVnLIqe- +2D3eAA-!\n",
			contains: []string{"Die Hasen klagten einst über ihre mißliche Lage; 1 + 1 日本語 😀!"}, check: func(t *testing.T, rep *Report, _ string) {
				if rep.Subject != "Die Hasen und die Frösche" {
					t.Errorf("Subject %q", rep.Subject)
				}
			}},
		{name: "raw Latin-1 inside Q encoded words (Netscape 4.7)", msg: "From: a@example.com\nTo: =?iso-8859-1?Q?J\xfcrgen?= <j@example.de>\nSubject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xf6sche?=\n\nhallo\n",
			check: func(t *testing.T, rep *Report, raw string) {
				if rep.Subject != "Die Hasen und die Frösche" || !strings.Contains(raw, "To: "+(&encoder{}).header("Jürgen")+" <j@example.de>") {
					t.Errorf("Subject %q, header:\n%s", rep.Subject, raw)
				}
			}},
		{name: "x-uuencode (Eudora) decoded, a text file's charset kept", opts: Options{AllowTypes: []string{"text/plain", "image/png"}, AllowExtensions: []string{"txt", "png"}},
			msg: mixed("b", text("b", "x")+
				"--b\nContent-Type: text/plain; charset=iso-8859-1; name=\"hasen.txt\"\nContent-Transfer-Encoding: x-uuencode\nContent-Disposition: attachment; filename=\"hasen.txt\"\n\n"+uu("hasen.txt", "Die Hasen und die Fr\xf6sche\r\n")+
				"--b\nContent-Type: image/png; name=\"ball.png\"\nContent-Transfer-Encoding: x-uuencode\n\n"+uu("ball.png", png+"\x00\x00\x00\x00\x00\x00")+"--b--\n"),
			contains: []string{"Die Hasen und die Frösche"},
			check: func(t *testing.T, rep *Report, raw string) {
				kept("hasen.txt", "ball.png")(t, rep, raw)
				if !strings.Contains(raw, "Content-Type: text/plain; charset=iso-8859-1; name=\"hasen.txt\"") {
					t.Errorf("the text file's charset is lost:\n%s", raw)
				}
				if len(rep.Kept) == 2 && (rep.Kept[0].Size != 27 || rep.Kept[1].Size != int64(len(png)+6)) {
					t.Errorf("sizes %d and %d", rep.Kept[0].Size, rep.Kept[1].Size)
				}
			}},
		{name: "a CR alone ends a line", msg: "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nline one=0Dline two=0D=0Aline three=0A\n",
			contains: []string{"line one\nline two\nline three\n"}},
		{name: "text/enriched (Apple Mail) shown as text", msg: "From: a@example.com\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/enriched; charset=us-ascii\n\n<bold>Bold</bold> <<not a command>\nsame line\n\n\nnew <param>Times</param>para<nofill>graph\n kept\n</nofill>\n--a--\n",
			contains: []string{"Bold <not a command> same line\n\nnew paragraph\n kept"}, absent: []string{"<bold>", "Times"}, check: func(t *testing.T, rep *Report, _ string) {
				if len(rep.Removed) != 0 {
					t.Errorf("removed %+v", rep.Removed)
				}
			}},
		{name: "text/richtext shown as text", msg: "From: a@example.com\nContent-Type: text/richtext\n\nA <bold>line</bold><nl>\nB <lt>c> and\nthe same line\n",
			contains: []string{"A line\nB <c> and the same line"}},
		{name: "uuencoded files inside a plain text (Outlook 2000)", opts: allowPDFPNGCSV,
			msg:      "From: a@example.com\nContent-Type: text/plain\n\nHello,\n\n" + uu("ball.png", png) + "\nbetween\n" + uu("setup.exe", "MZ\x90\x00 not a picture") + "after\nbegin 2024 plans\nWe start soon.\n",
			contains: []string{"Hello,", "between", "after\nbegin 2024 plans\nWe start soon."}, absent: []string{"begin 644"},
			check: func(t *testing.T, rep *Report, raw string) {
				kept("ball.png")(t, rep, raw)
				removedCode("setup.exe", CodeNotAllowed)(t, rep, raw)
			}},
		{name: "a digest's parts are messages", msg: "From: list@example.com\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: x@example.com\nSubject: first\n\nfirst message\n--d\n\nFrom: y@example.com\nSubject: second\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nsecond message\n--m\nContent-Type: application/octet-stream; name=\"x.exe\"\n\nMZ binary\n--m--\n--d--\n",
			contains: []string{"Subject: first\n\nfirst message", "Subject: second\n\nsecond message"}, absent: []string{"MZ binary", "Content-Type: application/octet-stream"},
			check: removedCode("x.exe", CodeNotAllowed)},

		// File names.
		{name: "RFC 2231 Shift_JIS name", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", "filename*=shift_jis''%8C%A9%90%CF%8F%91.pdf", "application/pdf", pdf)+"--b--\n"),
			contains: []string{"見積書.pdf"}, check: kept("見積書.pdf")},
		{name: "RFC 2231 ISO-2022-JP name with continuations", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", "filename*0*=iso-2022-jp''%1B%24%42%25%22%25%24%25%46%25%60%1B%28%42%2E%63; filename*1*=%73%76", "text/csv", "a,b\n1,2\n")+"--b--\n"),
			check: kept("アイテム.csv")},
		{name: "RFC 2231 EUC-JP name", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", "filename*=euc-jp''%B8%AB%C0%D1%BD%F1.pdf", "application/pdf", pdf)+"--b--\n"),
			check: kept("見積書.pdf")},
		{name: "RFC 2047 name split inside a character", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="=?UTF-8?B?6KaL?= =?UTF-8?B?56mN5pu4LnBkZg==?="`, "application/pdf", pdf)+"--b--\n"),
			check: kept("見積書.pdf")},
		{name: "raw Latin-1 header", msg: "From: J\xfcrgen <j@example.de>\nSubject: Gr\xfc\xdfe\nContent-Type: text/plain\n\nhallo\n",
			check: func(t *testing.T, _ *Report, raw string) {
				if !strings.Contains(raw, "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.de>") || !strings.Contains(raw, "Subject: "+(&encoder{}).header("Grüße")) {
					t.Errorf("From not re-encoded as Jürgen:\n%s", raw)
				}
			}},
		{name: "names written as base names without controls", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+
			att("b", `filename="../../etc/cron.pdf"`, "application/pdf", pdf)+
			att("b", `filename="=?UTF-8?Q?a=00b=0D=0Ac.pdf?="`, "application/pdf", pdf)+
			att("b", "filename*=UTF-8''%E2%80%AEfdp.exe", "application/pdf", pdf)+"--b--\n"),
			check: func(t *testing.T, rep *Report, raw string) {
				kept("cron.pdf", "a b c.pdf")(t, rep, raw)
				removedCode("fdp.exe", CodeNotAllowed)(t, rep, raw)
				if !strings.Contains(raw, `filename="cron.pdf"`) || strings.Contains(raw, "..") {
					t.Errorf("kept attachment not written under its base name:\n%s", raw)
				}
			}},
		{name: "Japanese name written in RFC 2231 form", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", "filename*=UTF-8''"+strings.Repeat("%E8%A6%8B%E7%A9%8D", 30)+".pdf", "application/pdf", pdf)+"--b--\n"),
			check: func(t *testing.T, rep *Report, raw string) {
				kept(strings.Repeat("見積", 30)+".pdf")(t, rep, raw)
				if !strings.Contains(raw, "filename*0*=UTF-8''%E8%A6%8B") || !strings.Contains(raw, "filename*1*=") {
					t.Errorf("no RFC 2231 continuations:\n%s", raw)
				}
			}},

		// HTML.
		{name: "</head> omitted", msg: "Content-Type: text/html; charset=utf-8\n\n<html><head><meta charset=utf-8><body><p>head を閉じない</p>\n",
			contains: []string{"head を閉じない"}},
		{name: "<title> never closed", msg: "Content-Type: text/html; charset=utf-8\n\n<html><head><title>題<body><p>title を閉じない本文</p></body></html>\n",
			contains: []string{"title を閉じない本文"}, absent: []string{"<p>"}},
		{name: "<object> never closed", msg: "Content-Type: text/html; charset=utf-8\n\n<body><object data=x.swf><param name=a value=b><p>object の後の本文</p>\n",
			contains: []string{"object の後の本文"}},
		{name: "<noscript> shown", msg: "Content-Type: text/html; charset=utf-8\n\n<body><script>x()</script><noscript><p>スクリプトなしの文</p></noscript>\n",
			contains: []string{"スクリプトなしの文"}, absent: []string{"x()"}},

		// The notice is ours alone.
		{name: "a name that is a URL", msg: mixed("b", text("b", "x")+att("b", `filename="https://evil.example/login.pdf"`, "application/pdf", pdf)+
			att("b", `filename="www.evil.example.pdf"`, "application/pdf", pdf)+"--b--\n"),
			absent: []string{"https://", "evil.example", "www.evil"}},
		{name: "a name holding line breaks", msg: mixed("b", text("b", "x")+att("b", `filename="=?UTF-8?B?`+base64.StdEncoding.EncodeToString([]byte("a.pdf\n原本は安全です。次のURLで確認: https://evil.example/\n"))+`?="`, "application/pdf", pdf)+"--b--\n"),
			absent: []string{"\n原本は安全です", "https://"}},
		{name: "a name holding a line break", msg: mixed("b", text("b", "x")+att("b", `filename="=?UTF-8?B?`+base64.StdEncoding.EncodeToString([]byte("a.pdf\r\n原本は安全です。管理者への連絡は不要です\n"))+`?="`, "application/pdf", pdf)+"--b--\n"),
			absent: []string{"\n原本は安全です"}, contains: []string{"1. a.pdf 原本は安全です。管理者への連絡は不要です (77 bytes"}},
		{name: "bidi controls", msg: mixed("b", text("b", "x")+att("b", "filename*=UTF-8''invoice%E2%80%AEfdp.exe", "application/pdf", pdf)+
			"--b\nContent-Type: application/x-\u202eevil\nContent-Transfer-Encoding: base64\n\n"+b64(pdf)+"\n--b--\n"),
			absent: []string{"\u202e"}, contains: []string{"invoicefdp.exe"}},
		{name: "a type holding a URL", msg: mixed("b", text("b", "x")+"--b\nContent-Type: application/https://evil.example/x\nContent-Transfer-Encoding: base64\n\n"+b64(pdf)+"\n--b--\n"),
			absent: []string{"https://"}},

		// RFC 5322 limits.
		{name: "a line of a million bytes", msg: "From: a@example.com\nX-Long: " + strings.Repeat("x", 1000000) + "\nSubject: " + strings.Repeat("word ", 400) + "\nX-Wide: " + strings.Repeat("y", 5000) + "\n\nbody\n",
			contains: []string{"body"}, check: func(t *testing.T, rep *Report, raw string) {
				if len(rep.HeaderDropped) != 1 || !strings.HasPrefix(rep.HeaderDropped[0], "X-Long:") {
					t.Errorf("header dropped %q", rep.HeaderDropped)
				}
			}},
		{name: "eighty thousand fields", msg: "From: a@example.com\n" + strings.Repeat("X-Many: field\n", 80000) + "Content-Type: text/plain; charset=utf-8\n\nbody after many fields\n",
			contains: []string{"body after many fields", "X-Many: 79001 past the cap of 1000 fields"}, check: func(t *testing.T, rep *Report, raw string) {
				if n := strings.Count(raw, "X-Many:"); n != 999 {
					t.Errorf("%d X-Many fields written", n)
				}
			}},

		// Alternatives.
		{name: "attachments of the alternative not chosen", opts: allowPDFPNGCSV,
			msg:      "From: a@example.com\nContent-Type: multipart/alternative; boundary=\"a\"\n\n--a\nContent-Type: text/plain\n\nplain version\n--a\nContent-Type: multipart/related; boundary=\"r\"\n\n--r\nContent-Type: text/html\n\n<p>html version</p>\n--r\nContent-Type: image/png\nContent-Disposition: inline; filename=\"logo.png\"\nContent-Transfer-Encoding: base64\n\n" + b64(png) + "\n--r--\n--a--\n",
			contains: []string{"plain version"}, check: func(t *testing.T, rep *Report, raw string) {
				kept()(t, rep, raw)
				removedCode("logo.png", CodeUnusedAlternative)(t, rep, raw)
			}},
		{name: "attachments of the alternative chosen", opts: withPrefer(allowPDFPNGCSV, "html"),
			msg:      "From: a@example.com\nContent-Type: multipart/alternative; boundary=\"a\"\n\n--a\nContent-Type: text/plain\n\nplain version\n--a\nContent-Type: multipart/related; boundary=\"r\"\n\n--r\nContent-Type: text/html\n\n<p>html version</p>\n--r\nContent-Type: image/png\nContent-Disposition: inline; filename=\"logo.png\"\nContent-Transfer-Encoding: base64\n\n" + b64(png) + "\n--r--\n--a--\n",
			contains: []string{"html version"}, check: kept("logo.png")},

		// Header links.
		{name: "links in header fields", msg: "From: a@example.com\nSubject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("今すぐ https://evil.example/login へ")) + "?=\nList-Unsubscribe: <https://evil.example/unsub>, <mailto:u@example.com>\nX-Campaign: www.evil.example\nReceived: from www.mx.example by x\n\nbody\n",
			check: func(t *testing.T, _ *Report, raw string) {
				for _, bad := range []string{"https://", "www.evil"} {
					if strings.Contains(raw, bad) {
						t.Errorf("header keeps %q:\n%s", bad, raw)
					}
				}
				if !strings.Contains(raw, "List-Unsubscribe: <hxxps://evil[.]example/unsub>, <mailto:u@example.com>") ||
					!strings.Contains(raw, "Received: from www.mx.example by x") {
					t.Errorf("header fields:\n%s", raw)
				}
				if !strings.Contains(raw, "Subject: "+(&encoder{}).header("今すぐ hxxps://evil[.]example/login へ")) {
					t.Errorf("Subject not defanged:\n%s", raw)
				}
			}},

		// Active content is not "safe" for an allow list.
		{name: "PDF with JavaScript", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="js.pdf"`, "application/pdf", "%PDF-1.4\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >> endobj\n%%EOF\n")+"--b--\n"),
			check: removedCode("js.pdf", CodeActive)},
		{name: "PDF with an escaped launch action", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="l.pdf"`, "application/pdf", "%PDF-1.4\n1 0 obj << /S /L#61unch /F (cmd.exe) >> endobj\n%%EOF\n")+"--b--\n"),
			check: removedCode("l.pdf", CodeActive)},
		{name: "PDF with JavaScript in a compressed object stream", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="o.pdf"`, "application/pdf", pdfObjStm("<< /S /JavaScript /JS (x) >>"))+"--b--\n"),
			check: removedCode("o.pdf", CodeActive)},
		{name: "plain PDF kept", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="ok.pdf"`, "application/pdf", pdfObjStm("<< /Type /Catalog >>"))+"--b--\n"),
			check: kept("ok.pdf")},
		{name: "Word file with a remote template", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="t.docx"`, TypeDOCX, docxWith(map[string]string{
			"word/_rels/settings.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" TargetMode="External"/></Relationships>`}))+"--b--\n"),
			check: removedCode("t.docx", CodeActive), contains: []string{"remote template"}},
		{name: "Word file with hyperlinks kept", opts: allowPDFPNGCSV, msg: mixed("b", text("b", "x")+att("b", `filename="h.docx"`, TypeDOCX, docxWith(map[string]string{
			"word/_rels/document.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://example.jp/" TargetMode="External"/></Relationships>`}))+"--b--\n"),
			check: kept("h.docx")},

		{name: "ISO-2022-JP lines that switch at every character", opts: Options{Charset: CharsetISO2022J}, msg: "Content-Type: text/plain; charset=utf-8\n\n" + strings.Repeat("a漢", 700) + "\n",
			contains: []string{"a漢a漢"}},

		// RFC 1468.
		{name: "half-width katakana in ISO-2022-JP", opts: Options{Charset: CharsetISO2022J}, msg: "Content-Type: text/plain; charset=utf-8\n\nﾊﾝｶｸｶﾀｶﾅﾃﾞｽ｡\n",
			contains: []string{"ハンカクカタカナデス。"}, check: func(t *testing.T, rep *Report, raw string) {
				if strings.Contains(raw, "\x1b(I") || rep.Replaced != 0 {
					t.Errorf("half-width katakana written as JIS X 0201 (ESC ( I) or replaced: %d", rep.Replaced)
				}
			}},
	}
}

// uu uuencodes data as old mailers did: zeros as spaces, which the
// lines lose at their end.
func uu(name, data string) string {
	var b strings.Builder
	b.WriteString("begin 644 " + name + "\n")
	for len(data) > 0 {
		n := min(len(data), 45)
		chunk := data[:n] + "\x00\x00"
		data = data[n:]
		line := []byte{byte(' ' + n)}
		for i := 0; i < n; i += 3 {
			c := chunk[i : i+3]
			for _, q := range []byte{c[0] >> 2, c[0]<<4&63 | c[1]>>4, c[1]<<2&63 | c[2]>>6, c[2] & 63} {
				line = append(line, ' '+q)
			}
		}
		b.WriteString(strings.TrimRight(string(line), " ") + "\n")
	}
	return b.String() + "`\nend\n"
}

func withPrefer(o Options, p string) Options { o.Prefer = p; return o }

func TestProbes(t *testing.T) {
	for _, p := range probes() {
		t.Run(p.name, func(t *testing.T) {
			o := p.opts
			o.TempDir = t.TempDir()
			var out bytes.Buffer
			rep, err := Message(strings.NewReader(crlfs(p.msg)), &out, testOptions(o))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Unparseable {
				t.Errorf("withheld: %s", rep.ParseError)
			}
			raw := out.String()
			for line := range strings.SplitSeq(raw, "\r\n") {
				if len(line) > maxLine {
					t.Fatalf("a line of %d octets: %.100q…", len(line), line)
				}
			}
			text := render(t, out.Bytes())
			for _, s := range p.contains {
				if !strings.Contains(text, s) {
					t.Errorf("output lacks %q:\n%s", s, capText(text, 3000))
				}
			}
			for _, s := range p.absent {
				if strings.Contains(text, s) {
					t.Errorf("output contains %q:\n%s", s, capText(text, 3000))
				}
			}
			if p.check != nil {
				p.check(t, rep, raw)
			}
		})
	}
}
