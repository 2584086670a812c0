package conformance

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Issue 28: outbound hold and approval (E-Post's Mail Approval, 誤送信防止)
// with mail from the inner server and decisions in a real browser: a
// held message goes after its delay; one cancelled by its sender never
// leaves; one approved through the approval mail's link arrives once;
// one rejected does not leave and its sender is told (no DSN goes out);
// while the approver is away the delegate is asked and approves; a
// kill -9 while messages are held loses nothing and sends nothing early;
// BCC enforcement rewrites the header and keeps every recipient.

// outboundConfig is configuration C with a store, the console, and the
// outbound rules: a file to the outside waits for kacho (bucho; kakari
// his delegate); three or more outside recipients are moved to Bcc;
// mail to short.example is held 8 seconds, other mail to the outside an
// hour (so that its sender can cancel it).
func outboundConfig(w *world, consoleAddr string) string {
	cfg := configC(`
store:
  driver: sqlite
  path: "`+w.path("sekisho.db")+`"
outbound:
  groups:
    - name: kacho
      members: [bucho@test.jp]
      delegates: [kakari@test.jp]
      timeout: 2h
  rules:
    - name: files-out
      destination: outside
      attachment: true
      approve: kacho
    - name: bcc-many
      min_outside: 3
      bcc_outside: 2
    - name: hold-short
      recipients: ["*@short.example"]
      hold: 8s
    - name: hold-out
      destination: outside
      hold: 1h
`) + `
console:
  listeners:
    - address: "` + consoleAddr + `"
      http: true
  url: "http://` + consoleAddr + `"
  administrators: [postmaster@test.jp]
`
	return strings.Replace(cfg, "    - address: user1@test.jp\n",
		"    - address: kakari@test.jp\n      name: 係長\n      secret: \"{PLAIN}kakari-secret\"\n    - address: user1@test.jp\n", 1)
}

// sendOut sends a message from the inner server and returns its queue ID.
func sendOut(t *testing.T, w *world, from string, rcpts []string, data string) string {
	t.Helper()
	c, err := dialFrom(innerIP, w.ports["mx"], false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	expect := func(code string) reply {
		t.Helper()
		r, err := c.readReply()
		if err != nil || r.code != code {
			t.Fatalf("want %s, got %+v %v\n%s", code, r, err, c.log)
		}
		return r
	}
	expect("220")
	c.send("EHLO inner.test.jp\r\n")
	expect("250")
	c.send("MAIL FROM:<" + from + ">\r\n")
	expect("250")
	for _, r := range rcpts {
		c.send("RCPT TO:<" + r + ">\r\n")
		expect("250")
	}
	c.send("DATA\r\n")
	expect("354")
	c.send(stuff(data) + ".\r\n")
	r := expect("250")
	c.send("QUIT\r\n")
	c.readReply()
	m := regexp.MustCompile(`queued as (\S+)`).FindStringSubmatch(strings.Join(r.lines, " "))
	if m == nil {
		t.Fatalf("no queue ID in %v", r.lines)
	}
	return m[1]
}

func plainMail(to, subject string) string {
	return "From: 田中 太郎 <tanaka@test.jp>\r\nTo: " + to + "\r\nSubject: " + encodedSubject(subject) +
		"\r\nMessage-ID: <" + fmt.Sprint(time.Now().UnixNano()) + "@test.jp>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nお世話になっております。\r\n"
}

// countSubject counts the messages whose Subject decodes to contain s.
func countSubject(msgs []sinkMessage, s string) int {
	n := 0
	for _, m := range msgs {
		if containsSubject(m, s) {
			n++
		}
	}
	return n
}

// noticesTo returns the decoded bodies of our notices for rcpt.
func noticesTo(msgs []sinkMessage, rcpt string) []string {
	var out []string
	for _, m := range msgs {
		if m.From != "" || len(m.To) != 1 || m.To[0] != rcpt || !strings.Contains(m.header(), "Auto-Submitted: auto-generated") {
			continue
		}
		dec, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, strings.NewReader(strings.ReplaceAll(m.body(), "\r\n", ""))))
		out = append(out, string(dec))
	}
	return out
}

func noticeWith(msgs []sinkMessage, rcpt string, parts ...string) bool {
	for _, n := range noticesTo(msgs, rcpt) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(n, p)
		}
		if all {
			return true
		}
	}
	return false
}

var linkRE = regexp.MustCompile(`http://[^/\s]+(/outbound/link/\S+)`)

func TestOutboundHoldAndApproval(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	consoleAddr := freePort(t)
	g := w.start(outboundConfig(w, consoleAddr))
	base := "http://" + consoleAddr
	waitConsole(t, base, g)
	inner, internet := w.sinks["inner"], w.sinks["internet"]
	file := func(subject string) string {
		return string(mailWith("田中 太郎 <tanaka@test.jp>", "partner@example.com", encodedSubject(subject), rfc2231("見積書.pdf"),
			"application/pdf", pdfBytes, ""))
	}
	tanaka, bucho, kakari := newPerson(t, base), newPerson(t, base), newPerson(t, base)

	t.Run("a held message goes after its delay, once", func(t *testing.T) {
		start := time.Now()
		sendOut(t, w, "tanaka@test.jp", []string{"a@short.example"}, plainMail("a@short.example", "短い保留"))
		inner.Wait(t, waitTimeout, "the hold notice", func(m []sinkMessage) bool {
			return noticeWith(m, "tanaka@test.jp", "短い保留", "保留しています", base+"/my/held")
		})
		got := internet.Wait(t, waitTimeout, "the held message", func(m []sinkMessage) bool { return countSubject(m, "短い保留") >= 1 })
		if since := time.Since(start); since < 8*time.Second {
			t.Errorf("sent %v after it was accepted, before its 8s hold", since)
		}
		g.waitQueueEmpty(t) // a second copy would have been queued with the first
		if n := countSubject(internet.Messages(), "短い保留"); n != 1 || countSubject(got, "短い保留") != 1 {
			t.Errorf("sent %d times", n)
		}
	})

	t.Run("its sender cancels one in the console: nothing leaves", func(t *testing.T) {
		tanaka.t = t
		qid := sendOut(t, w, "tanaka@test.jp", []string{"b@example.net"}, plainMail("b@example.net", "宛先を間違えた"))
		tanaka.signIn("tanaka@test.jp", "tanaka-secret")
		list := tanaka.waitText("/my/held", "宛先を間違えた")
		if !strings.Contains(list, "b@example.net") || !strings.Contains(list, "hold-out") {
			t.Errorf("my held mail:\n%s", list)
		}
		tanaka.screenshot("console-my-held")
		tanaka.open(linkInRow(tanaka, "宛先を間違えた"))
		tanaka.submit(`form.cancel button`)
		if got := tanaka.text("main"); !strings.Contains(got, "取り消しました") {
			t.Errorf("after cancelling:\n%s", got)
		}
		inner.Wait(t, waitTimeout, "the cancellation notice", func(m []sinkMessage) bool {
			return noticeWith(m, "tanaka@test.jp", "宛先を間違えた", "取り消されました")
		})
		waitGone(t, g, qid)
		if n := countSubject(internet.Messages(), "宛先を間違えた"); n != 0 {
			t.Errorf("the cancelled message left %d times", n)
		}
	})

	t.Run("approved by the approval mail's link: arrives once", func(t *testing.T) {
		bucho.t = t
		sendOut(t, w, "tanaka@test.jp", []string{"partner@example.com"}, file("見積書の送付"))
		msgs := inner.Wait(t, waitTimeout, "the approval mail", func(m []sinkMessage) bool {
			return noticeWith(m, "bucho@test.jp", "見積書の送付", "承認")
		})
		var link string
		for _, n := range noticesTo(msgs, "bucho@test.jp") {
			if m := linkRE.FindStringSubmatch(n); m != nil && strings.Contains(n, "見積書の送付") {
				link = m[1]
			}
		}
		if link == "" {
			t.Fatalf("no link in the approval mail: %q", noticesTo(msgs, "bucho@test.jp"))
		}
		if n := countSubject(internet.Messages(), "見積書の送付"); n != 0 {
			t.Fatalf("sent before the approval (%d)", n)
		}
		// Not signed in: the link is the approver's.
		bucho.open(link)
		decideOnPage(t, bucho, []string{"tanaka@test.jp", "partner@example.com", "見積書.pdf", "お世話になっております", "files-out"},
			"console-outbound-link", "確認しました", "approve", "承認しました")
		internet.Wait(t, waitTimeout, "the approved message", func(m []sinkMessage) bool { return countSubject(m, "見積書の送付") >= 1 })
		inner.Wait(t, waitTimeout, "the approval notice", func(m []sinkMessage) bool {
			return noticeWith(m, "tanaka@test.jp", "見積書の送付", "承認され", "bucho@test.jp")
		})
		g.waitQueueEmpty(t) // a second copy would have been queued with the first
		if n := countSubject(internet.Messages(), "見積書の送付"); n != 1 {
			t.Errorf("the approved message arrived %d times", n)
		}
	})

	t.Run("rejected in the console: nothing leaves, the sender is told", func(t *testing.T) {
		bucho.t = t
		qid := sendOut(t, w, "tanaka@test.jp", []string{"partner@example.com"}, file("住民データ"))
		bucho.signIn("bucho@test.jp", "bucho-secret")
		list := bucho.waitText("/outbound/approve", "住民データ")
		if !strings.Contains(list, "見積書.pdf") || !strings.Contains(list, "tanaka@test.jp") {
			t.Errorf("to approve:\n%s", list)
		}
		bucho.open(linkInRow(bucho, "住民データ"))
		decideOnPage(t, bucho, []string{"Subject:", "partner@example.com", "見積書.pdf", "お世話になっております"},
			"console-outbound", "個人情報は送れません", "reject", "却下しました")
		inner.Wait(t, waitTimeout, "the rejection notice", func(m []sinkMessage) bool {
			return noticeWith(m, "tanaka@test.jp", "住民データ", "却下", "個人情報は送れません")
		})
		waitGone(t, g, qid)
		if n := countSubject(internet.Messages(), "住民データ"); n != 0 {
			t.Errorf("the rejected message left %d times", n)
		}
		for _, m := range internet.Messages() {
			if m.From == "" {
				t.Errorf("a DSN went to the outside: %s", m)
			}
		}
	})

	t.Run("the approver is away: the delegate is asked and approves", func(t *testing.T) {
		bucho.t, kakari.t = t, t
		bucho.open("/outbound/approve")
		bucho.submit(`form.absence button`)
		if got := bucho.text("main"); !strings.Contains(got, "不在に設定しています") {
			t.Fatalf("after setting the absence:\n%s", got)
		}
		asked := len(noticesTo(inner.Messages(), "bucho@test.jp"))
		sendOut(t, w, "tanaka@test.jp", []string{"partner@example.com"}, file("出張中の決裁"))
		inner.Wait(t, waitTimeout, "the approval mail to the delegate", func(m []sinkMessage) bool {
			return noticeWith(m, "kakari@test.jp", "出張中の決裁")
		})
		if n := len(noticesTo(inner.Messages(), "bucho@test.jp")); n != asked {
			t.Errorf("the absent approver was asked too")
		}
		kakari.signIn("kakari@test.jp", "kakari-secret")
		kakari.waitText("/outbound/approve", "出張中の決裁")
		kakari.screenshot("console-outbound-approve")
		kakari.open(linkInRow(kakari, "出張中の決裁"))
		kakari.submit(`form.decide button[value=approve]`)
		internet.Wait(t, waitTimeout, "the message the delegate approved", func(m []sinkMessage) bool { return countSubject(m, "出張中の決裁") >= 1 })
		g.waitQueueEmpty(t) // a second copy would have been queued with the first
		if n := countSubject(internet.Messages(), "出張中の決裁"); n != 1 {
			t.Errorf("arrived %d times", n)
		}
	})

	t.Run("kill -9 while held: nothing lost, nothing early", func(t *testing.T) {
		bucho.t = t
		accepted := time.Now()
		short := sendOut(t, w, "tanaka@test.jp", []string{"k@short.example"}, plainMail("k@short.example", "停電前の保留"))
		waiting := sendOut(t, w, "tanaka@test.jp", []string{"partner@example.com"}, file("停電前の承認待ち"))
		g.kill(t)
		if err := g.start(); err != nil {
			t.Fatal(err)
		}
		waitConsole(t, base, g)
		held := map[string]bool{}
		for _, m := range g.queue(t) {
			held[m.ID] = m.Held
		}
		if !held[waiting] {
			t.Errorf("the message waiting for approval is not held after the restart: %v", held)
		}
		internet.Wait(t, waitTimeout, "the held message after the restart", func(m []sinkMessage) bool { return countSubject(m, "停電前の保留") >= 1 })
		if since := time.Since(accepted); since < 8*time.Second {
			t.Errorf("sent %v after it was accepted, before its 8s hold", since)
		}
		waitGone(t, g, short)
		if n := countSubject(internet.Messages(), "停電前の承認待ち"); n != 0 {
			t.Fatalf("sent without approval after the restart")
		}
		bucho.open("/outbound/approve")
		bucho.submit(`form.absence button[name=back]`)
		bucho.waitText("/outbound/approve", "停電前の承認待ち")
		bucho.open(linkInRow(bucho, "停電前の承認待ち"))
		bucho.submit(`form.decide button[value=approve]`)
		internet.Wait(t, waitTimeout, "the approved message", func(m []sinkMessage) bool { return countSubject(m, "停電前の承認待ち") >= 1 })
		g.waitQueueEmpty(t)
		for _, s := range []string{"停電前の保留", "停電前の承認待ち"} {
			if n := countSubject(internet.Messages(), s); n != 1 {
				t.Errorf("%s arrived %d times", s, n)
			}
		}
	})

	t.Run("BCC enforcement rewrites the header and keeps every recipient", func(t *testing.T) {
		rcpts := []string{"a@example.com", "b@example.net", "c@example.org", "user1@test.jp"}
		sendOut(t, w, "tanaka@test.jp", rcpts, "From: tanaka@test.jp\r\nTo: A <a@example.com>, b@example.net, c@example.org\r\n"+
			"Cc: user1@test.jp\r\nSubject: "+encodedSubject("説明会のご案内")+"\r\n\r\n各位\r\n")
		got := internet.Wait(t, waitTimeout, "the outside copy", func(m []sinkMessage) bool { return countSubject(m, "説明会のご案内") >= 1 })
		var out sinkMessage
		for _, m := range got {
			if containsSubject(m, "説明会のご案内") {
				out = m
			}
		}
		if strings.Join(out.To, ",") != "a@example.com,b@example.net,c@example.org" {
			t.Errorf("the outside recipients: %v", out.To)
		}
		h := out.header()
		if !strings.Contains(h, "To: undisclosed-recipients:;") || strings.Contains(h, "a@example.com") || strings.Contains(h, "b@example.net") ||
			!strings.Contains(h, "Cc: user1@test.jp") {
			t.Errorf("the header sent:\n%s", h)
		}
		msgs := inner.Wait(t, waitTimeout, "the inside copy and the notice", func(m []sinkMessage) bool {
			return countSubject(m, "説明会のご案内") >= 1 && noticeWith(m, "tanaka@test.jp", "説明会のご案内", "BCC")
		})
		for _, m := range msgs {
			if containsSubject(m, "説明会のご案内") && !bytes.Contains(m.Data, []byte("To: undisclosed-recipients:;")) {
				t.Errorf("the inside copy's header differs:\n%s", m.header())
			}
		}
	})

	t.Run("relay test names the rule", func(t *testing.T) {
		out := runCLI(t, "relay", "test", "-c", g.cfg, "--client", innerIP, "--from", "tanaka@test.jp", "--rcpt", "partner@example.com",
			"--message", w.writeFile("file.eml", file("試験")))
		if !strings.Contains(out, "outbound") || !strings.Contains(out, "files-out") || !strings.Contains(out, "approve kacho") {
			t.Errorf("relay test:\n%s", out)
		}
	})

	t.Run("the administrators' history", func(t *testing.T) {
		admin := newPerson(t, base)
		admin.signIn("postmaster@test.jp", "postmaster-secret")
		hist := admin.waitText("/admin/outbound", "住民データ")
		for _, want := range []string{"宛先を間違えた", "見積書の送付", "bucho@test.jp", "kakari@test.jp", "個人情報は送れません"} {
			if !strings.Contains(hist, want) {
				t.Errorf("the history lacks %q:\n%s", want, hist)
			}
		}
		admin.screenshot("console-outbound-history")
		audit := admin.waitText("/admin/audit", "outbound-approve")
		for _, want := range []string{"outbound-reject", "outbound-cancel", "absence", "queue-remove", "queue-release"} {
			if !strings.Contains(audit, want) {
				t.Errorf("the audit log lacks %q", want)
			}
		}
		for _, p := range []*person{tanaka, bucho, kakari, admin} {
			p.t = t // the others' subtests have ended: report here
			p.noDialogs()
		}
	})
}

// decideOnPage checks that a held message's page shows wants, takes its
// screenshot, and decides (button: approve or reject) with a comment.
func decideOnPage(t *testing.T, p *person, wants []string, shot, comment, button, done string) {
	t.Helper()
	page := p.text("main")
	for _, want := range wants {
		if !strings.Contains(page, want) {
			t.Errorf("the message's page lacks %q:\n%s", want, page)
		}
	}
	p.screenshot(shot)
	p.do(chromedp.SendKeys(`form.decide input[name=comment]`, comment))
	p.submit(`form.decide button[value=` + button + `]`)
	if got := p.text("main"); !strings.Contains(got, done) {
		t.Errorf("after deciding (%s):\n%s", button, got)
	}
}

// waitGone waits until a queue ID has left the queue.
func waitGone(t *testing.T, g *gateway, qid string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		found := false
		for _, m := range g.queue(t) {
			found = found || m.ID == qid
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still queued after %v", qid, waitTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
