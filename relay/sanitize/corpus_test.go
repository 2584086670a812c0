package sanitize

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"slices"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
)

// The corpus is built here, byte for byte, so each message's charset and
// layout is exactly what the mailer it imitates sends; `go test -update`
// writes the messages to testdata/corpus and the results to testdata/golden.

func enc(e encoding.Encoding, s string) string {
	b, err := e.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func sjis(s string) string  { return enc(japanese.ShiftJIS, s) }
func eucjp(s string) string { return enc(japanese.EUCJP, s) }
func jis(s string) string   { return enc(japanese.ISO2022JP, s) }

// bword is an RFC 2047 B encoded word in a charset.
func bword(cs, raw string) string {
	return "=?" + cs + "?B?" + base64.StdEncoding.EncodeToString([]byte(raw)) + "?="
}

func b64(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 76 {
		b.WriteString(e[:76] + "\r\n")
		e = e[76:]
	}
	return b.String() + e
}

func crlfs(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// officeZip builds a minimal OOXML package; macro adds vbaProject.bin.
func officeZip(kind string, macro bool) string {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	files := []string{"[Content_Types].xml", kind + "/workbook.xml"}
	if kind == "word" {
		files[1] = "word/document.xml"
	}
	if macro {
		files = append(files, kind+"/vbaProject.bin")
	}
	for _, f := range files {
		w, _ := z.Create(f)
		fmt.Fprintf(w, "<x>%s</x>", strings.Repeat("data ", 50))
	}
	z.Close()
	return buf.String()
}

const pdf = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
const png = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"

const newsletterHTML = `<html><head><meta charset="shift_jis"><title>ニュース</title><style>td{color:red}</style>
<script>alert(1)</script></head><body>
<table width="600"><tr><td>
<h1>市役所ニュースレター　第12号</h1>
<p>いつもお世話になっております。<br>今月のお知らせです。</p>
<ul><li>説明会のご案内</li><li>申請書の提出期限<ol><li>4月30日</li><li>5月31日</li></ol></li></ul>
<table border="1"><tr><th>項目</th><th>日時</th><th>場所</th></tr>
<tr><td>説明会</td><td>4月10日 14:00</td><td>本庁舎3階</td></tr>
<tr><td>相談会</td><td>4月17日</td><td>第二会議室</td></tr></table>
<p>詳しくは<a href="https://www.example.com/news?id=12">こちら</a>をご覧ください。①②</p>
<img src="cid:image001.png@01D9" alt="ロゴ">
</td></tr></table></body></html>`

type corpusCase struct {
	name string
	opts Options
	msg  string
}

func corpus() []corpusCase {
	var cs []corpusCase
	add := func(name string, o Options, msg string) { cs = append(cs, corpusCase{name, o, crlfs(msg)}) }
	allow := Options{AllowTypes: []string{"application/pdf", "image/png", TypeXLSX}, AllowExtensions: []string{"pdf", "png", "xlsx"}}

	// Outlook: mixed > related > alternative, Shift_JIS HTML, image001.png
	// inline, a PDF and a macro workbook.
	outlook := `From: ` + bword("iso-2022-jp", jis("総務課 山田")) + ` <yamada@example.com>
To: <soumu@city.example.lg.jp>
Subject: ` + bword("shift_jis", sjis("【重要】ニュースレター第12号")) + `
Date: Mon, 6 Apr 2026 10:00:00 +0900
Message-ID: <0001@example.com>
MIME-Version: 1.0
X-Mailer: Microsoft Outlook 16.0
Content-Type: multipart/mixed; boundary="----=_NextPart_000_0001"

This is a multi-part message in MIME format.

------=_NextPart_000_0001
Content-Type: multipart/related; boundary="----=_NextPart_001_0002"

------=_NextPart_001_0002
Content-Type: multipart/alternative; boundary="----=_NextPart_002_0003"

------=_NextPart_002_0003
Content-Type: text/plain; charset="shift_jis"
Content-Transfer-Encoding: base64

` + b64(sjis("市役所ニュースレター　第12号\r\nいつもお世話になっております。\r\n詳しくは https://www.example.com/news?id=12 をご覧ください。\r\n")) + `

------=_NextPart_002_0003
Content-Type: text/html; charset="shift_jis"
Content-Transfer-Encoding: quoted-printable

` + qp(sjis(newsletterHTML)) + `

------=_NextPart_002_0003--

------=_NextPart_001_0002
Content-Type: image/png; name="image001.png"
Content-Transfer-Encoding: base64
Content-ID: <image001.png@01D9>

` + b64(png) + `

------=_NextPart_001_0002--

------=_NextPart_000_0001
Content-Type: application/pdf; name="` + bword("shift_jis", sjis("案内.pdf")) + `"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="` + bword("shift_jis", sjis("案内.pdf")) + `"

` + b64(pdf) + `

------=_NextPart_000_0001
Content-Type: application/vnd.ms-excel.sheet.macroEnabled.12; name="集計.xlsm"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename*=UTF-8''%E9%9B%86%E8%A8%88.xlsm

` + b64(officeZip("xl", true)) + `

------=_NextPart_000_0001--
`
	add("outlook_sjis_html_pdf_xlsm", Options{}, outlook)
	add("outlook_prefer_html", Options{Prefer: "html"}, outlook)
	add("outlook_allow_pdf_iso2022jp", Options{Charset: CharsetISO2022J, Prefer: "html", AllowTypes: allow.AllowTypes, AllowExtensions: allow.AllowExtensions}, outlook)
	add("outlook_links_remove", Options{Prefer: "html", Links: LinksRemove}, outlook)

	// Gmail: alternative, UTF-8 quoted-printable, a quoted reply.
	add("gmail_utf8_reply", Options{Prefer: "html"}, `From: Taro <taro@gmail.com>
To: hanako@city.example.lg.jp
Subject: =?UTF-8?B?UmU6IOS8muitsOOBruaXpeeoiw==?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000abcdef"

--000000000000abcdef
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

`+qp("承知しました。\n\n> 会議は10日です。\n")+`
--000000000000abcdef
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

`+qp(`<div dir="ltr">承知しました。<div><br></div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">2026年4月6日(月) 花子 &lt;<a href="mailto:hanako@city.example.lg.jp">hanako@city.example.lg.jp</a>&gt;:<br></div><blockquote class="gmail_quote">会議は10日です。<br>資料: <a href="http://files.example.net/a.zip">http://files.example.net/a.zip</a></blockquote></div>`)+`
--000000000000abcdef--
`)

	// Thunderbird: ISO-2022-JP, format=flowed, a Word document.
	add("thunderbird_iso2022jp_docx", allow, `From: `+bword("ISO-2022-JP", jis("鈴木"))+` <suzuki@example.org>
To: kikaku@city.example.lg.jp
Subject: `+bword("ISO-2022-JP", jis("議事録の送付"))+`
User-Agent: Mozilla Thunderbird
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="------------tb0123456789"

This is a multi-part message in MIME format.
--------------tb0123456789
Content-Type: text/plain; charset=ISO-2022-JP; format=flowed
Content-Transfer-Encoding: 7bit

`+jis("企画課 御中\n\n議事録を送付します。\nよろしくお願いします。\n")+`
--------------tb0123456789
Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;
 name="=?ISO-2022-JP?B?GyRCNUQ7dk8/GyhC?=.docx"
Content-Disposition: attachment;
 filename*0*=ISO-2022-JP''%1B%24%42%35%44%3B%76%4F%3F%1B%28%42%2E%64%6F%63%78
Content-Transfer-Encoding: base64

`+b64(officeZip("word", false))+`
--------------tb0123456789--
`)

	// A mobile carrier (docomo-style decoration mail): Shift_JIS, 8bit,
	// multipart/related HTML with an inline GIF, a jpeg attachment
	// labelled as a PNG.
	add("carrier_sjis_decomail", allow, `From: user@docomo.example.ne.jp
To: kouhou@city.example.lg.jp
Subject: `+bword("Shift_JIS", sjis("写真を送ります"))+`
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="--carrier1"

----carrier1
Content-Type: multipart/related; boundary="--carrier2"

----carrier2
Content-Type: text/html; charset=Shift_JIS
Content-Transfer-Encoding: 8bit

`+sjis(`<html><body><font color="#ff0000">写真を送ります</font><br><img src="cid:deco1"><br>よろしく～</body></html>`)+`
----carrier2
Content-Type: image/gif; name="deco1.gif"
Content-Transfer-Encoding: base64
Content-ID: <deco1>

`+b64("GIF89a\x01\x00\x01\x00\x00\x00\x00;")+`
----carrier2--

----carrier1
Content-Type: image/png; name="photo.png"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="photo.png"

`+b64("\xff\xd8\xff\xe0\x00\x10JFIF\x00")+`
----carrier1--
`)

	// A carrier's plain mail: 8bit Shift_JIS with pictograms in the
	// user-defined area (docomo's sun, F89F), which must not turn into
	// replacement characters; ISO-2022-JP output shows them as 〓.
	carrierEmoji := "From: user@ezweb.example.ne.jp\nTo: a@city.example.lg.jp\nSubject: " + bword("Shift_JIS", sjis("晴れ")) +
		"\nMIME-Version: 1.0\nContent-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: 8bit\n\n" +
		sjis("今日は晴れです") + "\xf8\x9f" + sjis("。ｶﾀｶﾅも半角です。") + "\n"
	add("carrier_sjis_pictogram", Options{}, carrierEmoji)
	add("carrier_sjis_pictogram_iso2022jp", Options{Charset: CharsetISO2022J}, carrierEmoji)

	// EUC-JP text with no charset label, and a raw 8-bit Subject.
	add("eucjp_unlabelled", Options{SubjectTag: "[無害化]"}, `From: old@example.co.jp
To: a@city.example.lg.jp
Subject: `+eucjp("お知らせ")+`
MIME-Version: 1.0
Content-Type: text/plain
Content-Transfer-Encoding: 8bit

`+eucjp("古いシステムからのお知らせです。\n全角カナと漢字：東京都千代田区\n")+`
`)

	// UTF-8 HTML only, with entities and a data table.
	add("utf8_html_only", Options{SubjectTag: "[無害化]"}, `From: shop@example.com
To: a@city.example.lg.jp
Subject: Sale
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p>Price&nbsp;list &amp; more</p><table><tr><td>A</td><td>&yen;100</td></tr><tr><td>長い名前の商品</td><td>&yen;2,000</td></tr></table><p>Visit <a href="javascript:evil()">here</a> or www.example.com.</p>
`)

	// Forwarded as attachment: message/rfc822 holding its own attachment.
	add("nested_rfc822", Options{}, `From: boss@example.jp
To: a@city.example.lg.jp
Subject: Fw: original
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8

転送します。
--outer
Content-Type: message/rfc822

From: =?UTF-8?B?5aSW6YOo?= <ext@example.com>
Subject: =?UTF-8?B?5YWD44Gu44Oh44O844Or?=
Date: Sun, 5 Apr 2026 09:00:00 +0900
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain; charset=iso-2022-jp

`+jis("元のメールの本文です。")+`
--inner
Content-Type: application/octet-stream; name="invoice.pdf.exe"
Content-Transfer-Encoding: base64

`+b64("MZ\x90\x00\x03\x00\x00\x00")+`
--inner--
--outer--
`)

	// S/MIME signed.
	add("smime_signed", Options{}, `From: signer@example.com
To: a@city.example.lg.jp
Subject: signed
MIME-Version: 1.0
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"

--sig
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

`+b64("署名付きメールです。\n")+`
--sig
Content-Type: application/pkcs7-signature; name="smime.p7s"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="smime.p7s"

`+b64("\x30\x82\x01\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02")+`
--sig--
`)

	// winmail.dat (TNEF) from an Outlook with rich text.
	add("tnef_winmail", allow, `From: rtf@example.com
To: a@city.example.lg.jp
Subject: tnef
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="t"

--t
Content-Type: text/plain; charset=us-ascii

See attached.
--t
Content-Type: application/ms-tnef; name="winmail.dat"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="winmail.dat"

`+b64("\x78\x9f\x3e\x22\x01\x00\x01\x06\x90\x08\x00")+`
--t--
`)

	// A PDF that is really an executable, a password ZIP, and a real PDF.
	add("disguised_and_ppap", allow, `From: x@example.com
To: a@city.example.lg.jp
Subject: files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="d"

--d
Content-Type: text/plain; charset=utf-8

3 files
--d
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64

`+b64("MZ\x90\x00\x03\x00")+`
--d
Content-Type: application/zip; name="secret.zip"
Content-Transfer-Encoding: base64

`+b64("PK\x03\x04\x14\x00\x01\x00\x08\x00\x00\x00\x00\x00")+`
--d
Content-Type: application/octet-stream; name="real.pdf"
Content-Transfer-Encoding: base64

`+b64(pdf)+`
--d--
`)

	// Broken MIME: no closing boundary; no boundary parameter at all.
	add("broken_unterminated", Options{}, `From: x@example.com
To: a@city.example.lg.jp
Subject: broken
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

truncated here
`)
	add("broken_no_boundary", Options{SubjectTag: "[無害化]"}, `From: x@example.com
To: a@city.example.lg.jp
Subject: `+bword("UTF-8", "壊れたメール")+`
MIME-Version: 1.0
Content-Type: multipart/mixed

--b
Content-Type: text/plain

text
--b--
`)

	// Long lines, and characters ISO-2022-JP lacks.
	long := strings.Repeat("あいうえお", 400) + "\n" + strings.Repeat("x", 3000) + "\n①㈱髙😀\n〜 ‖ −\n"
	add("long_lines_utf8", Options{}, "From: x@example.com\nTo: a@city.example.lg.jp\nSubject: long\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"+long)
	add("long_lines_iso2022jp", Options{Charset: CharsetISO2022J}, "From: x@example.com\nTo: a@city.example.lg.jp\nSubject: long\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"+long)
	return cs
}

// qp encodes s as quoted-printable.
func qp(s string) string {
	var b strings.Builder
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// pdfObjStm is a PDF whose one object sits in a Flate-compressed object
// stream, where a plain scan of the file cannot see its names.
func pdfObjStm(obj string) string {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte("1 0 " + obj))
	w.Close()
	return fmt.Sprintf("%%PDF-1.5\n2 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\r\n%s\r\nendstream\nendobj\n%%%%EOF\n", z.Len(), z.String())
}

// docxWith is a minimal Word package with extra parts.
func docxWith(extra map[string]string) string {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	parts := map[string]string{"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document><w:body><w:p><w:r><w:t>本文</w:t></w:r></w:p></w:body></w:document>"}
	for k, v := range extra {
		parts[k] = v
	}
	names := make([]string, 0, len(parts))
	for k := range parts {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, n := range names {
		w, _ := z.Create(n)
		w.Write([]byte(parts[n]))
	}
	z.Close()
	return buf.String()
}
