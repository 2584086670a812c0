package gateway

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/store"
)

// outboundSections is testSections with a store and outbound rules: a
// file to the outside waits for kacho's approver; three or more outside
// recipients are moved to Bcc with a copy to sato; other mail to the
// outside is held a moment.
func outboundSections(t *testing.T) (Sections, string) {
	sec, dir := testSections(t)
	sec.Accounts.Accounts = append(sec.Accounts.Accounts, accounts.AccountConfig{Address: "bucho@city.toyokawa.lg.jp"})
	sec.Relay.Store = store.Config{Driver: store.DriverSQLite, Path: filepath.Join(dir, "s.db")}
	yes, two := true, 2
	sec.Relay.Outbound = guard.OutboundConfig{
		Groups: []guard.GroupConfig{{Name: "kacho", Members: []string{"bucho@city.toyokawa.lg.jp"}}},
		Rules: []guard.OutboundRuleConfig{
			{Name: "files-out", Destination: guard.DestOutside, Attachment: &yes, Approve: "kacho"},
			{Name: "many-out", MinOutside: 3, BccOutside: &two, CopyTo: "sato@city.toyokawa.lg.jp"},
			{Name: "out", Destination: guard.DestOutside, Hold: time.Second},
		},
	}
	return sec, dir
}

// logRecorder keeps the records of one message text.
type logRecorder struct {
	mu   sync.Mutex
	msg  string
	recs []map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != l.msg {
		return nil
	}
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) rules() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		out = append(out, r["rule"])
	}
	return out
}

func waitStore(t *testing.T, e *Engine) *store.Store {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.Store() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the store did not open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e.Store()
}

func sendFromInner(t *testing.T, e *Engine, rcpts []string, msg string, code int) string {
	t.Helper()
	d := dial(t, "127.0.0.2", e.Addrs()[0].String())
	d.do("EHLO inner.city", 250)
	d.do("MAIL FROM:<tanaka@city.toyokawa.lg.jp>", 250)
	for _, r := range rcpts {
		d.do("RCPT TO:<"+r+">", 250)
	}
	d.do("DATA", 354)
	d.raw(msg + ".\r\n")
	reply := d.expect(code)
	d.do("QUIT", 221)
	return reply
}

const withFile = "From: tanaka@city.toyokawa.lg.jp\r\nTo: x@example.com\r\nSubject: =?UTF-8?B?6KaL56mN?=\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplease see\r\n" +
	"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"JVBERi0xLjQK\r\n--b--\r\n"

func outboundRequests(t *testing.T, st *store.Store) []store.Request {
	t.Helper()
	l, err := st.Requests(context.Background(), store.RequestQuery{Kind: store.KindOutbound})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestOutboundApprovalAndHold(t *testing.T) {
	sec, dir := outboundSections(t)
	e := startEngine(t, sec)
	st := waitStore(t, e)
	reply := sendFromInner(t, e, []string{"x@example.com"}, withFile, 250)
	id, _ := queue.ParseID(strings.TrimPrefix(reply, "2.0.0 OK: queued as "))
	m, err := e.queue.Get(id)
	if err != nil || !m.Held {
		t.Fatalf("queued %s held %v (%v)", id, m.Held, err)
	}
	reqs := outboundRequests(t, st)
	if len(reqs) != 1 || reqs[0].Item != id.String() || reqs[0].Group != "kacho" || reqs[0].State != store.StatePending ||
		reqs[0].Requester != "tanaka@city.toyokawa.lg.jp" || reqs[0].OnExpiry != store.ExpiryReject {
		t.Fatalf("requests %+v", reqs)
	}
	if !strings.Contains(reqs[0].Detail, `"a.pdf"`) || !strings.Contains(reqs[0].Detail, "please see") || !strings.Contains(reqs[0].Detail, `"見積"`) {
		t.Errorf("the approver's detail: %s", reqs[0].Detail)
	}
	// The sender's notice and the approval mail reach the inner server.
	inner := waitFiles(t, filepath.Join(dir, "inner"), 2)
	var toSender, toApprover bool
	for _, f := range inner {
		b, _ := os.ReadFile(f)
		toSender = toSender || strings.Contains(string(b), "<tanaka@city.toyokawa.lg.jp>")
		toApprover = toApprover || strings.Contains(string(b), "<bucho@city.toyokawa.lg.jp>")
	}
	if !toSender || !toApprover {
		t.Errorf("notices: sender %v, approver %v", toSender, toApprover)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "out", "*.eml")); len(files) != 0 {
		t.Fatal("sent before the approval")
	}
	if _, err := e.Approvals().Decide(context.Background(), reqs[0].ID, true, "bucho@city.toyokawa.lg.jp", "ok"); err != nil {
		t.Fatal(err)
	}
	waitFiles(t, filepath.Join(dir, "out"), 1)

	// Plain mail to the outside: held a moment, then sent by itself.
	sendFromInner(t, e, []string{"y@example.com"}, "From: tanaka@city.toyokawa.lg.jp\r\nTo: y@example.com\r\nSubject: s\r\n\r\nhi\r\n", 250)
	out := waitFiles(t, filepath.Join(dir, "out"), 2)
	time.Sleep(200 * time.Millisecond)
	if files, _ := filepath.Glob(filepath.Join(dir, "out", "*.eml")); len(files) != len(out) {
		t.Errorf("%d messages out, want 2", len(files))
	}
	var held store.Request
	for _, r := range outboundRequests(t, st) {
		if r.Reason == "out" {
			held = r
		}
	}
	if held.State != store.StateDone || held.DecidedBy != store.ExpiredBy || held.Policy != "hold" {
		t.Errorf("the hold's request: %+v", held)
	}
}

func TestOutboundBccAndCopy(t *testing.T) {
	sec, dir := outboundSections(t)
	e := startEngine(t, sec)
	waitStore(t, e)
	rcpts := []string{"a@example.com", "b@example.net", "c@example.org", "tanaka@city.toyokawa.lg.jp"}
	sendFromInner(t, e, rcpts, "From: tanaka@city.toyokawa.lg.jp\r\nTo: A <a@example.com>, b@example.net\r\n"+
		"Cc: c@example.org, =?UTF-8?B?55Sw5Lit?= <tanaka@city.toyokawa.lg.jp>\r\nSubject: many\r\n\r\nhello\r\n", 250)
	out := waitFiles(t, filepath.Join(dir, "out"), 1)
	for _, f := range out {
		b, _ := os.ReadFile(f)
		h, _, _ := strings.Cut(string(b), "\r\n\r\n")
		for _, r := range rcpts[:3] {
			if !strings.Contains(h, "X-Sekisho-Envelope-To: <"+r+">") {
				t.Errorf("%s is no longer a recipient", r)
			}
		}
		_, msgHeader, _ := strings.Cut(h, "Received:")
		if strings.Contains(msgHeader, "a@example.com") || strings.Contains(msgHeader, "b@example.net") || !strings.Contains(h, "To: undisclosed-recipients:;") ||
			!strings.Contains(h, "Cc: =?UTF-8?B?55Sw5Lit?= <tanaka@city.toyokawa.lg.jp>") {
			t.Errorf("a copy's header:\n%s", h)
		}
	}
	// The inner server gets tanaka's copy with sato's supervisor copy
	// (one delivery) and the notice to the sender.
	inner := waitFiles(t, filepath.Join(dir, "inner"), 2)
	var copyTo, notice bool
	for _, f := range inner {
		b, _ := os.ReadFile(f)
		s := string(b)
		copyTo = copyTo || strings.Contains(s, "X-Sekisho-Envelope-To: <sato@city.toyokawa.lg.jp>") && strings.Contains(s, "Subject: many")
		if strings.Contains(s, "Auto-Submitted: auto-generated") {
			_, body, _ := strings.Cut(s, "\r\n\r\n")
			dec, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, strings.NewReader(strings.ReplaceAll(body, "\r\n", ""))))
			notice = strings.Contains(string(dec), "3 件") && strings.Contains(string(dec), "a@example.com")
		}
	}
	if !copyTo || !notice {
		t.Errorf("supervisor copy %v, notice %v", copyTo, notice)
	}
}

// Without the store a held message cannot be decided by anybody: the
// client is told to try later and nothing stays queued.
func TestOutboundHoldWithoutStoreIs451(t *testing.T) {
	sec, _ := outboundSections(t)
	e := startEngine(t, sec)
	waitStore(t, e)
	e.back.mu.Lock()
	st := e.back.st
	e.back.st = nil
	e.back.mu.Unlock()
	defer func() { e.back.mu.Lock(); e.back.st = st; e.back.mu.Unlock() }()
	reply := sendFromInner(t, e, []string{"x@example.com"}, withFile, 451)
	if !strings.Contains(reply, "outbound rule") {
		t.Errorf("reply %q", reply)
	}
	if n := len(e.queue.List()); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}

// The dry run and the live session decide the outbound rules alike: for
// each message, relay test names the rule the live session logs.
func TestOutboundDryRunMatchesLive(t *testing.T) {
	sec, _ := outboundSections(t)
	rec := &logRecorder{msg: "outbound rule"}
	e := startEngineWith(t, sec, slog.New(rec), ops.NewMetrics())
	waitStore(t, e)
	dr, err := NewDryRunner(sec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rcpts []string
		msg   string
	}{
		{[]string{"x@example.com"}, withFile},
		{[]string{"a@example.com", "b@example.net", "c@example.org"}, "From: tanaka@city.toyokawa.lg.jp\r\nTo: a@example.com, b@example.net, c@example.org\r\n\r\nx\r\n"},
		{[]string{"y@example.com"}, "From: tanaka@city.toyokawa.lg.jp\r\nSubject: s\r\n\r\nhi\r\n"},
		{[]string{"bucho@city.toyokawa.lg.jp"}, withFile},
	}
	var dry []string
	for _, c := range cases {
		probe, msg := ProbeInput{Client: "127.0.0.2", Helo: "inner.city", From: "tanaka@city.toyokawa.lg.jp", Rcpts: c.rcpts}.Probe()
		if msg != "" {
			t.Fatal(msg)
		}
		h, _, _ := strings.Cut(c.msg, "\r\n\r\n")
		probe.Message, probe.Header = []byte(c.msg), []byte(h+"\r\n\r\n")
		steps := dr.Run(probe)
		last := steps[len(steps)-1]
		if last.Stage != "outbound" {
			t.Fatalf("no outbound step: %+v", steps)
		}
		if last.Rule != "" {
			dry = append(dry, last.Rule)
		}
		sendFromInner(t, e, c.rcpts, c.msg, 250)
	}
	if live := rec.rules(); strings.Join(live, ",") != strings.Join(dry, ",") || len(dry) != 3 {
		t.Errorf("live %v, dry run %v", live, dry)
	}
}

// The message is read for the outbound rules only when a rule that looks
// at it could still match: mail inside is decided by its envelope.
func TestOutboundReadsTheMessageOnlyWhenNeeded(t *testing.T) {
	var calls atomic.Int32
	orig := countFiles
	countFiles = func(r io.Reader) (int, error) { calls.Add(1); return orig(r) }
	t.Cleanup(func() { countFiles = orig })
	sec, _ := outboundSections(t)
	e := startEngine(t, sec)
	waitStore(t, e)
	sendFromInner(t, e, []string{"bucho@city.toyokawa.lg.jp"}, withFile, 250)
	if n := calls.Load(); n != 0 {
		t.Errorf("mail inside: the attachments were counted %d times", n)
	}
	sendFromInner(t, e, []string{"x@example.com"}, withFile, 250)
	if n := calls.Load(); n != 1 {
		t.Errorf("mail outside with a file rule: the attachments were counted %d times, want once", n)
	}
}
