package conformance

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/relay/store/pgtest"
)

// Issue 27: the web console, in a real browser, against each store:
// staff see their sanitized mail and ask for originals, an approver
// decides, the original reaches the inner server once; a self-release
// class is delivered at once; a form without its CSRF token, another
// person's item, an expired session and a locked-out account are refused;
// hostile subjects, names and file names stay inert text; the message
// trace shows every step of a delivered, a deferred and a bounced
// message; the administrator's pages answer.
func TestConsole_SQLite(t *testing.T) {
	t.Parallel()
	runConsole(t, func(w *world) string {
		return "store:\n  driver: sqlite\n  path: \"" + w.path("sekisho.db") + "\"\n"
	}, "sqlite")
}

func TestConsole_PostgreSQL(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	runConsole(t, func(*world) string {
		return "store:\n  driver: postgres\n  dsn: \"" + pg.DSN + "\"\n"
	}, "pgx")
}

// consoleConfig is configuration C with 無害化 for internet mail to the
// inner server, a store, and the console on loopback: postmaster
// administers, bucho approves, tanaka is staff; PDFs are released by
// their recipient, everything else after approval.
func consoleConfig(w *world, storeYAML, consoleAddr string) string {
	return configC(sanitizeRelay+storeYAML+`
auth:
  mechanisms: [PLAIN, LOGIN]
  allow_insecure: true
`) + `
console:
  listeners:
    - address: "` + consoleAddr + `"
      http: true
  administrators: [postmaster@test.jp]
  approvers: [bucho@test.jp]
  release:
    default: approval
    rules:
      - policy: self
        classes: [pdf]
`
}

// b64Lines encodes for a MIME part.
func b64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return out.String() + s + "\r\n"
}

// mailWith is an internet message with a text part and one attachment.
func mailWith(from, to, subject, filenameParam, ctype string, content []byte, extraBody string) []byte {
	return []byte("From: " + from + "\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\nDate: Mon, 30 Nov 2026 09:00:00 +0900\r\n" +
		"Message-ID: <" + fmt.Sprint(time.Now().UnixNano()) + "@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"お世話になっております。資料を添付します。\r\n" + extraBody + "--b1\r\nContent-Type: " + ctype + "\r\nContent-Disposition: attachment; " + filenameParam +
		"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64Lines(content) + "--b1--\r\n")
}

func encodedSubject(s string) string {
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

func rfc2231(name string) string { return "filename*=UTF-8''" + url.PathEscape(name) }

var (
	xlsmBytes = append([]byte("PK\x03\x04\x14\x00\x06\x00"), []byte(strings.Repeat("macro", 40))...)
	pdfBytes  = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
)

func runConsole(t *testing.T, storeYAML func(*world) string, driver string) {
	w := newWorld(t)
	consoleAddr := freePort(t)
	g := w.start(consoleConfig(w, storeYAML(w), consoleAddr))
	base := "http://" + consoleAddr
	waitConsole(t, base, g)
	inner, internet := w.sinks["inner"], w.sinks["internet"]

	// The mail of the scenarios, from the internet to the inner server.
	sendRaw(t, w, internetIP, "yamada@example.com", "tanaka@test.jp",
		mailWith("山田 <yamada@example.com>", "tanaka@test.jp", encodedSubject("御見積書の送付"), rfc2231("集計.xlsm"),
			"application/vnd.ms-excel.sheet.macroEnabled.12", xlsmBytes, ""))
	sendRaw(t, w, internetIP, "sato@example.com", "tanaka@test.jp",
		mailWith("sato@example.com", "tanaka@test.jp", encodedSubject("地図のご案内"), rfc2231("地図.pdf"), "application/pdf", pdfBytes, ""))
	sendRaw(t, w, internetIP, "kaneko@example.com", "bucho@test.jp",
		mailWith("kaneko@example.com", "bucho@test.jp", encodedSubject("部長あての書類"), rfc2231("書類.xlsm"),
			"application/vnd.ms-excel.sheet.macroEnabled.12", xlsmBytes, ""))
	inner.Wait(t, waitTimeout, "three sanitized messages", func(m []sinkMessage) bool { return len(m) >= 3 })

	tanaka := newPerson(t, base)
	bucho := newPerson(t, base)
	admin := newPerson(t, base)
	shots := driver == "sqlite" // one set of screenshots is enough

	t.Run("sign-in page", func(t *testing.T) {
		tanaka.t = t
		tanaka.open("/signin")
		if h := tanaka.text("h1"); h != "サインイン" {
			t.Errorf("Japanese first: heading %q", h)
		}
		if shots {
			tanaka.screenshot("console-signin")
		}
		tanaka.open("/signin?lang=en")
		if h := tanaka.text("h1"); h != "Sign in" {
			t.Errorf("English on request: heading %q", h)
		}
		tanaka.open("/signin?lang=ja")
	})

	var approvalItem string
	t.Run("staff asks, approver approves, the original arrives once", func(t *testing.T) {
		tanaka.t, bucho.t = t, t
		tanaka.signIn("tanaka@test.jp", "tanaka-secret")
		list := tanaka.waitText("/my/quarantine", "御見積書の送付")
		for _, want := range []string{"集計.xlsm", "地図のご案内", "承認が必要", "すぐに受け取れます"} {
			if !strings.Contains(list, want) {
				t.Errorf("my quarantine lacks %q:\n%s", want, list)
			}
		}
		if strings.Contains(list, "部長あての書類") {
			t.Errorf("tanaka sees bucho's mail:\n%s", list)
		}
		if shots {
			tanaka.screenshot("console-my-quarantine")
		}
		approvalItem = linkInRow(tanaka, "御見積書の送付")
		tanaka.open(approvalItem)
		page := tanaka.text("main")
		for _, want := range []string{"yamada@example.com", "集計.xlsm", "お世話になっております", "承認者の承認が必要"} {
			if !strings.Contains(page, want) {
				t.Errorf("the item page lacks %q:\n%s", want, page)
			}
		}
		tanaka.do(chromedp.SendKeys(`textarea[name=reason]`, "取引先の見積書の確認に必要です"))
		if shots {
			tanaka.screenshot("console-item")
		}
		tanaka.submit(`form.ask button`)
		if got := tanaka.text("main"); !strings.Contains(got, "申請しました") || !strings.Contains(got, "承認待ち") {
			t.Fatalf("after asking:\n%s", got)
		}

		bucho.signIn("bucho@test.jp", "bucho-secret")
		got := bucho.waitText("/approvals", "取引先の見積書の確認に必要です")
		if !strings.Contains(got, "tanaka@test.jp") || !strings.Contains(got, "集計.xlsm") {
			t.Errorf("the approver's page:\n%s", got)
		}
		bucho.do(chromedp.SendKeys(`form.decide input[name=comment]`, "確認しました"))
		if shots {
			bucho.screenshot("console-approvals")
		}
		bucho.submit(`form.decide button[value=approve]`)
		if got := bucho.text("main"); !strings.Contains(got, "承認しました") {
			t.Errorf("after approving:\n%s", got)
		}
		inner.Wait(t, waitTimeout, "the released original and the notice", func(m []sinkMessage) bool {
			return countReleased(m, "御見積書") >= 1 && countNotices(m, "tanaka@test.jp") >= 1
		})
		g.waitQueueEmpty(t)
		if n := countReleased(inner.Messages(), "御見積書"); n != 1 {
			t.Errorf("the original arrived %d times, want once", n)
		}
		mine := tanaka.waitText("/my/requests", "送信済み")
		if !strings.Contains(mine, "bucho@test.jp") || !strings.Contains(mine, "確認しました") {
			t.Errorf("tanaka's requests:\n%s", mine)
		}
		if shots {
			tanaka.screenshot("console-my-requests")
		}
	})

	t.Run("a self-release class is delivered at once", func(t *testing.T) {
		tanaka.t = t
		tanaka.open("/my/quarantine")
		tanaka.open(linkInRow(tanaka, "地図のご案内"))
		if got := tanaka.text("main"); !strings.Contains(got, "申請するとすぐに") {
			t.Errorf("the self policy is not explained:\n%s", got)
		}
		tanaka.submit(`form.ask button`)
		if got := tanaka.text("main"); !strings.Contains(got, "原本を送りました") {
			t.Errorf("after asking:\n%s", got)
		}
		inner.Wait(t, waitTimeout, "the released PDF", func(m []sinkMessage) bool { return countReleased(m, "地図") >= 1 })
		g.waitQueueEmpty(t)
		if n := countReleased(inner.Messages(), "地図"); n != 1 {
			t.Errorf("the PDF original arrived %d times", n)
		}
	})

	t.Run("another person's item is not found", func(t *testing.T) {
		tanaka.t, admin.t = t, t
		admin.signIn("postmaster@test.jp", "postmaster-secret")
		admin.waitText("/admin/quarantine", "部長あての書類")
		theirs := linkInRow(admin, "部長あての書類")
		tanaka.open(theirs)
		if got := tanaka.text("main"); !strings.Contains(got, "見つかりません") || strings.Contains(got, "kaneko@example.com") {
			t.Errorf("tanaka opened bucho's item:\n%s", got)
		}
		// Asking for it with a form pointed at it: refused the same way.
		tanaka.open(approvalItem)
		tanaka.do(chromedp.SetAttributeValue(`form.ask`, "action", theirs+"/request"), chromedp.SendKeys(`textarea[name=reason]`, "x"))
		tanaka.submit(`form.ask button`)
		if got := tanaka.text("main"); !strings.Contains(got, "見つかりません") {
			t.Errorf("a request for bucho's item:\n%s", got)
		}
	})

	t.Run("a form without the CSRF token is refused", func(t *testing.T) {
		tanaka.t = t
		tanaka.open(approvalItem)
		tanaka.do(chromedp.RemoveAttribute(`form.ask input[name=csrf]`, "name"), chromedp.SendKeys(`textarea[name=reason]`, "again"))
		tanaka.submit(`form.ask button`)
		if got := tanaka.text("main"); !strings.Contains(got, "フォームの有効期限が切れたか") {
			t.Errorf("a request without the token:\n%s", got)
		}
	})

	t.Run("hostile content is inert text", func(t *testing.T) {
		tanaka.t = t
		hostile := mailWith(`"<img src=x onerror=alert('name')>" <evil@example.com>`, "tanaka@test.jp",
			`<script>alert('subject')</script> 請求書`, `filename="\"><svg onload=alert('file')>.xlsm"`,
			"application/octet-stream", xlsmBytes,
			"<a href=\"javascript:alert('link')\">click</a> <script>alert('body')</script>\r\n")
		sendRaw(t, w, internetIP, "evil@example.com", "tanaka@test.jp", hostile)
		// A display name that turns itself around; in a file name and a
		// subject the sanitize stage already drops such characters.
		bidi := mailWith("=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte("経理部 \u202Egpj.exe"))+"?= <evil2@example.com>", "tanaka@test.jp",
			encodedSubject("請求書 \u202Eexe.pdf"), rfc2231("請求書\u202Efdp.exe"), "application/octet-stream", []byte("MZ\x90\x00not really"), "")
		sendRaw(t, w, internetIP, "evil2@example.com", "tanaka@test.jp", bidi)
		tanaka.waitText("/my/quarantine", "<script>alert('subject')</script>")
		list := tanaka.waitText("/my/quarantine", "evil2@example.com")
		if !strings.Contains(list, "経理部 [U+202E]gpj.exe") || strings.Contains(list, "\u202e") {
			t.Errorf("the bidi override is not shown as a code:\n%s", list)
		}
		tanaka.open(linkInRow(tanaka, "alert('subject')"))
		page := tanaka.text("main")
		for _, want := range []string{"<img src=x onerror=alert('name')>", `"><svg onload=alert('file')>.xlsm`} {
			if !strings.Contains(page, want) {
				t.Errorf("the item page does not show %q as text:\n%s", want, page)
			}
		}
		injected := eval[float64](tanaka, `document.querySelectorAll('script, svg, img, iframe, object, embed, a[href^="javascript"]').length`)
		if injected != 0 {
			t.Errorf("%v elements from the message are live in the page", injected)
		}
		if shots {
			tanaka.screenshot("console-hostile")
		}
		tanaka.open("/my/quarantine")
		tanaka.open(linkInRow(tanaka, "[U+202E]"))
		if got := tanaka.text("main"); strings.Contains(got, "\u202e") {
			t.Errorf("a raw bidi override reached the page:\n%s", got)
		}
		tanaka.noDialogs()
	})

	t.Run("the message trace shows every step", func(t *testing.T) {
		admin.t = t
		internet.Refuse("later@example.org", 451, "4.3.0")
		internet.Refuse("gone@example.org", 550, "5.1.1")
		for _, to := range []string{"ok@example.org", "later@example.org", "gone@example.org"} {
			sendRaw(t, w, innerIP, "tanaka@test.jp", to, []byte("From: tanaka@test.jp\r\nTo: "+to+"\r\nSubject: trace "+to+"\r\n"+
				"Message-ID: <trace-"+to+">\r\n\r\nhello\r\n"))
		}
		internet.Wait(t, waitTimeout, "the delivered one", func(m []sinkMessage) bool { return len(m) >= 1 })
		inner.Wait(t, waitTimeout, "the bounce", func(m []sinkMessage) bool { return countBounces(m) >= 1 })
		admin.waitText("/admin/trace?sender=tanaka%40test.jp", "gone@example.org")
		if shots {
			admin.screenshot("console-trace")
		}
		for _, c := range []struct{ rcpt, want string }{
			{"ok@example.org", "delivered"}, {"later@example.org", "deferred"}, {"gone@example.org", "failed"},
		} {
			admin.open("/admin/trace?message_id=trace-" + url.QueryEscape(c.rcpt))
			admin.open(linkInRow(admin, c.rcpt))
			got := admin.waitText(pathOf(admin.location()), c.want)
			for _, step := range []string{"受信", "accepted", "<trace-" + c.rcpt + ">"} {
				if !strings.Contains(got, step) {
					t.Errorf("%s: the trace lacks %q:\n%s", c.rcpt, step, got)
				}
			}
			switch c.rcpt {
			case "later@example.org":
				if !strings.Contains(got, "451") || !strings.Contains(got, "4.3.0") {
					t.Errorf("the deferred attempt's reply is missing:\n%s", got)
				}
				if shots {
					admin.screenshot("console-trace-message")
				}
				// An administrator deletes it from the queue here.
				qid := strings.TrimPrefix(pathOf(admin.location()), "/admin/trace/message/")
				admin.open("/admin/queue/" + qid)
				if shots {
					admin.screenshot("console-queue-message")
				}
				admin.submit(`form[action$="/delete"] button`)
				if got := admin.text("main"); !strings.Contains(got, "キューから削除しました") {
					t.Errorf("after deleting:\n%s", got)
				}
			case "gone@example.org":
				got = admin.waitText(pathOf(admin.location()), "エラー通知")
				if !strings.Contains(got, "550") || !strings.Contains(got, "5.1.1") {
					t.Errorf("the bounce's reply is missing:\n%s", got)
				}
			case "ok@example.org":
				if !strings.Contains(got, "250") {
					t.Errorf("the delivery's reply is missing:\n%s", got)
				}
			}
		}
		// The deletion is an audited step of that message.
		admin.open("/admin/trace?rcpt=later%40example.org")
		admin.open(linkInRow(admin, "later@example.org"))
		admin.waitText(pathOf(admin.location()), "キュー操作")
	})

	t.Run("the administrator's pages", func(t *testing.T) {
		admin.t = t
		for _, p := range []struct{ path, want, shot string }{
			{"/admin", "流量", "console-dashboard"},
			{"/admin/queue", "通", "console-queue"},
			{"/admin/quarantine", "部長あての書類", "console-quarantine"},
			{"/admin/config", "有効な設定", "console-config"},
			{"/admin/audit", "signin", "console-audit"},
		} {
			got := admin.waitText(p.path, p.want)
			if p.path == "/admin/config" && (strings.Contains(got, "tanaka-secret") || !strings.Contains(got, "(redacted)")) {
				t.Errorf("secrets are not redacted on the configuration page")
			}
			if shots {
				admin.screenshot(p.shot)
			}
		}
		audit := admin.text("main")
		for _, want := range []string{"approve", "request", "view", "queue-delete", "csrf-refused", "denied"} {
			if !strings.Contains(audit, want) {
				t.Errorf("the audit log lacks %q", want)
			}
		}
		admin.open("/admin/tests")
		admin.do(chromedp.SendKeys(`#relay input[name=client]`, "198.51.100.7"), chromedp.SendKeys(`#relay input[name=from]`, "spam@example.net"),
			chromedp.SendKeys(`#relay textarea[name=rcpts]`, "someone@example.org"))
		admin.submit(`#relay button`)
		if got := admin.text("#relay"); !strings.Contains(got, "554") || !strings.Contains(got, "reject") {
			t.Errorf("relay test in the console:\n%s", got)
		}
		if shots {
			admin.screenshot("console-tests")
		}
		admin.do(chromedp.SendKeys(`#accounts textarea[name=addresses]`, "info@test.jp"))
		admin.submit(`#accounts button`)
		if got := admin.text("#accounts"); !strings.Contains(got, "bucho@test.jp") {
			t.Errorf("accounts check in the console:\n%s", got)
		}
	})

	t.Run("an expired session is refused", func(t *testing.T) {
		tanaka.t = t
		expireSessions(t, driver, storeYAML(w))
		tanaka.open("/my/quarantine")
		if loc := tanaka.location(); !strings.Contains(loc, "/signin") || !strings.Contains(tanaka.text("main"), "有効期限が切れました") {
			t.Errorf("an expired session was accepted: %s\n%s", loc, tanaka.text("main"))
		}
	})

	// Last: it locks the browser's address out of signing in.
	t.Run("a locked-out account is refused", func(t *testing.T) {
		p := newPerson(t, base)
		for i := range 5 {
			p.open("/signin")
			p.do(chromedp.SendKeys(`input[name=user]`, "baito@test.jp"), chromedp.SendKeys(`input[name=password]`, fmt.Sprint("wrong", i)))
			p.submit(`form.signin button`)
		}
		p.open("/signin")
		p.do(chromedp.SendKeys(`input[name=user]`, "baito@test.jp"), chromedp.SendKeys(`input[name=password]`, "baito-secret"))
		p.submit(`form.signin button`)
		if got := p.text("main"); !strings.Contains(got, "しばらくサインインできません") {
			t.Errorf("the right password after five failures:\n%s", got)
		}
		// The same lockout holds for SMTP AUTH from another network.
		c, err := dialFrom(staffIP, w.ports["mx"], false)
		if err != nil {
			t.Fatal(err)
		}
		defer c.conn.Close()
		c.readReply()
		c.send("EHLO pc.test.jp\r\n")
		c.flush()
		c.readReply()
		c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00baito@test.jp\x00baito-secret")) + "\r\n")
		c.flush()
		if r, err := c.readReply(); err != nil || r.code != "454" {
			t.Errorf("SMTP AUTH for the locked account: %+v %v, want 454", r, err)
		}
	})
}

// waitConsole waits until the console answers.
func waitConsole(t *testing.T, base string, g *gateway) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := httpGet(base + "/signin")
		if err == nil && resp == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console did not answer within %v: %v\n%s", startTimeout, err, g.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// linkInRow returns the path of the first link in the table row (or
// card) whose text contains s.
func linkInRow(p *person, s string) string {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { for (const a of document.querySelectorAll('tr a, section.card a')) {
		const row = a.closest('tr') || a.closest('section');
		if (row && row.textContent.includes(%q)) return new URL(a.href).pathname; } return ""; })()`, s)
	path := eval[string](p, js)
	if path == "" {
		p.t.Fatalf("no link in a row with %q on %s:\n%s", s, p.location(), p.text("main"))
	}
	return path
}

func pathOf(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.RequestURI()
	}
	return u
}

// countReleased counts the released originals whose text holds s.
func countReleased(msgs []sinkMessage, s string) int {
	n := 0
	for _, m := range msgs {
		if strings.HasPrefix(string(m.Data), "X-Sekisho-Released: ") && containsSubject(m, s) {
			n++
		}
	}
	return n
}

func containsSubject(m sinkMessage, s string) bool {
	for _, line := range strings.Split(m.header(), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Subject: "); ok {
			d, err := decodeWords(v)
			return err == nil && strings.Contains(d, s)
		}
	}
	return false
}

// countNotices counts the console's notices to rcpt (null sender).
func countNotices(msgs []sinkMessage, rcpt string) int {
	n := 0
	for _, m := range msgs {
		if m.From == "" && len(m.To) == 1 && m.To[0] == rcpt && strings.Contains(m.header(), "[sekisho]") {
			n++
		}
	}
	return n
}

// countBounces counts DSNs (null sender, a delivery report).
func countBounces(msgs []sinkMessage) int {
	n := 0
	for _, m := range msgs {
		if m.From == "" && strings.Contains(m.header(), "report-type=delivery-status") {
			n++
		}
	}
	return n
}

// expireSessions ends every console session the way time does: their
// expiry passes (the store keeps it; the server checks it on each
// request).
func expireSessions(t *testing.T, driver, storeYAML string) {
	t.Helper()
	var dsn string
	for _, line := range strings.Split(storeYAML, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		if k == "path" {
			dsn = "file:" + strings.Trim(v, `"`) + "?_pragma=busy_timeout(10000)"
		}
		if k == "dsn" {
			dsn = strings.Trim(v, `"`)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, `UPDATE sessions SET expires = 1`); err != nil {
		t.Fatal(err)
	}
}

var _ = store.DriverSQLite // the store's drivers (sqlite, pgx) are registered by importing it

// httpGet returns the status of a GET.
func httpGet(u string) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// decodeWords decodes RFC 2047 encoded words.
func decodeWords(v string) (string, error) { return new(mime.WordDecoder).DecodeHeader(v) }

// Two gateways share one PostgreSQL store; only the first serves the
// console. Mail sanitized by the second is listed on the first's console,
// and the release a recipient asks for there is carried out by the second,
// which holds the original.
func TestConsole_SharedStoreReleaseByTheHolder(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	wb := newWorld(t)
	gb := wb.start(configC(sanitizeRelay + "store:\n  driver: postgres\n  dsn: \"" + pg.DSN + "\"\n  instance: gw-b\n"))
	wa := newWorld(t)
	consoleAddr := freePort(t)
	ga := wa.start(consoleConfig(wa, "store:\n  driver: postgres\n  dsn: \""+pg.DSN+"\"\n  instance: gw-a\n", consoleAddr))
	base := "http://" + consoleAddr
	waitConsole(t, base, ga)

	sendRaw(t, wb, internetIP, "sato@example.com", "tanaka@test.jp",
		mailWith("sato@example.com", "tanaka@test.jp", encodedSubject("別の関所から"), rfc2231("案内.pdf"), "application/pdf", pdfBytes, ""))
	wb.sinks["inner"].Wait(t, waitTimeout, "the sanitized message at B", func(m []sinkMessage) bool { return len(m) >= 1 })

	tanaka := newPerson(t, base)
	tanaka.signIn("tanaka@test.jp", "tanaka-secret")
	tanaka.waitText("/my/quarantine", "別の関所から")
	item := linkInRow(tanaka, "別の関所から")
	if !strings.Contains(item, "/gw-b/") {
		t.Errorf("the item's path %s does not name its gateway", item)
	}
	tanaka.open(item)
	tanaka.submit(`form.ask button`)
	wb.sinks["inner"].Wait(t, waitTimeout, "the original, released by B", func(m []sinkMessage) bool { return countReleased(m, "別の関所から") >= 1 })
	gb.waitQueueEmpty(t)
	if n := countReleased(wa.sinks["inner"].Messages(), "別の関所から"); n != 0 {
		t.Errorf("gateway A released an original it does not hold (%d)", n)
	}
	if n := countReleased(wb.sinks["inner"].Messages(), "別の関所から"); n != 1 {
		t.Errorf("the original arrived %d times", n)
	}
	tanaka.waitText("/my/requests", "送信済み")
	tanaka.noDialogs()
}
