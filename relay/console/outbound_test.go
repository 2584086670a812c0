package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/store"
)

// outboundFixture: bucho approves for group kacho, kakari is its
// delegate; tanaka sends; sato is nobody.
func outboundFixture(t *testing.T) *fixture {
	return newFixtureSections(t, func(sec *gateway.Sections) {
		sec.Accounts.Accounts = append(sec.Accounts.Accounts,
			accounts.AccountConfig{Address: "bucho@test.jp", Secret: "{PLAIN}bucho-pw"},
			accounts.AccountConfig{Address: "kakari@test.jp", Secret: "{PLAIN}kakari-pw"})
		sec.Relay.Outbound = guard.OutboundConfig{
			Groups: []guard.GroupConfig{{Name: "kacho", Members: []string{"bucho@test.jp", "tanaka@test.jp"}, Delegates: []string{"kakari@test.jp"}}},
			Rules:  []guard.OutboundRuleConfig{{Destination: guard.DestOutside, Approve: "kacho"}},
		}
	}, "", "")
}

// hold queues a held message from tanaka and records its request.
func (f *fixture) hold(t *testing.T, policy string) store.Request {
	t.Helper()
	env := queue.Envelope{From: "tanaka@test.jp", Rcpts: []queue.Recipient{{Addr: "x@example.com"}}}
	id, err := f.eng.Queue().EnqueueHeld(env, strings.NewReader("From: tanaka@test.jp\r\nTo: x@example.com\r\nSubject: 見積\r\n\r\n本文です\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := approval.Held{QueueID: id, Sender: "tanaka@test.jp", Recipients: []string{"x@example.com"}, Policy: policy,
		Until: time.Now().Add(time.Hour), OnExpiry: store.ExpiryReject, Detail: approval.OutboundDetail{Rule: "rules[0]"}}
	h.Detail.Subject, h.Detail.Text = "見積", "本文です"
	if policy == approval.PolicyApproval {
		h.Group = "kacho"
	}
	r, err := f.eng.Approvals().Hold(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func waitRequest(t *testing.T, st *store.Store, id int64, done func(store.Request) bool) store.Request {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := st.Request(context.Background(), id)
		if err == nil && done(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d: %+v %v", id, r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHeldMailPages(t *testing.T) {
	f := outboundFixture(t)
	ctx := context.Background()
	tanaka, sato, bucho, kakari, admin := f.client(t), f.client(t), f.client(t), f.client(t), f.client(t)
	tanaka.signIn("tanaka@test.jp", "tanaka-pw")
	sato.signIn("sato@test.jp", "sato-pw")
	bucho.signIn("bucho@test.jp", "bucho-pw")
	kakari.signIn("kakari@test.jp", "kakari-pw")
	admin.signIn("admin@test.jp", "admin-pw")
	a := f.hold(t, approval.PolicyApproval)
	page := "/outbound/" + itoa(a.ID)

	if _, body := tanaka.get("/my/held"); !strings.Contains(body, "見積") || !strings.Contains(body, "承認待ち") || strings.Contains(body, `value="send"`) {
		t.Errorf("my held mail:\n%s", body)
	}
	// The sender is a member of the group, and still may not approve.
	if resp, body := tanaka.get(page); resp.StatusCode != http.StatusOK || strings.Contains(body, `value="approve"`) {
		t.Errorf("the sender's view: %d", resp.StatusCode)
	}
	if resp, _ := tanaka.post(page, url.Values{"decision": {"approve"}, "csrf": {tanaka.csrf}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the sender approved their own message: %d", resp.StatusCode)
	}
	for _, p := range []string{page, "/outbound/approve", "/admin/outbound"} {
		if resp, body := sato.get(p); resp.StatusCode == http.StatusOK || strings.Contains(body, "本文です") {
			t.Errorf("sato opened %s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := sato.post(page, url.Values{"decision": {"reject"}, "csrf": {sato.csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sato decided: %d", resp.StatusCode)
	}
	_, list := bucho.get("/outbound/approve")
	if !strings.Contains(list, "見積") || !strings.Contains(list, "tanaka@test.jp") || !strings.Contains(list, `value="approve"`) {
		t.Errorf("bucho's list:\n%s", list)
	}
	if _, body := bucho.get(page); !strings.Contains(body, "本文です") || !strings.Contains(body, "x@example.com") {
		t.Errorf("bucho's view:\n%s", body)
	}
	resp, body := bucho.post(page, url.Values{"decision": {"approve"}, "comment": {"確認済み"}, "csrf": {bucho.csrf}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "承認しました") {
		t.Fatalf("approving: %d\n%s", resp.StatusCode, body)
	}
	done := waitRequest(t, f.st, a.ID, func(r store.Request) bool { return r.State == store.StateDone })
	if done.DecidedBy != "bucho@test.jp" || done.Comment != "確認済み" {
		t.Errorf("decided %+v", done)
	}
	if resp, _ := kakari.post(page, url.Values{"decision": {"reject"}, "csrf": {kakari.csrf}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second decision: %d", resp.StatusCode)
	}
	if au, _ := f.st.Audit(ctx, store.AuditQuery{Action: "outbound-approve"}); len(au) != 1 || au[0].Actor != "bucho@test.jp" {
		t.Errorf("audit %+v", au)
	}

	// The sender cancels another one.
	b := f.hold(t, approval.PolicyApproval)
	tanaka.get("/my/held")
	if resp, body := tanaka.post("/outbound/"+itoa(b.ID), url.Values{"decision": {"cancel"}, "csrf": {tanaka.csrf}}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, "取り消しました") {
		t.Errorf("cancelling: %d\n%s", resp.StatusCode, body)
	}
	waitRequest(t, f.st, b.ID, func(r store.Request) bool { return !r.DoneAt.IsZero() })
	id, err := queue.ParseID(b.Item)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Queue().Get(id); err == nil {
		t.Error("the cancelled message is still queued")
	}

	// The administrators' history shows both.
	if _, body := admin.get("/admin/outbound"); !strings.Contains(body, "bucho@test.jp") || strings.Count(body, "/outbound/") < 2 {
		t.Errorf("history:\n%s", body)
	}

	// Absence: set and cleared.
	bucho.get("/outbound/approve")
	bucho.post("/outbound/absence", url.Values{"until": {time.Now().Add(48 * time.Hour).Format("2006-01-02")}, "csrf": {bucho.csrf}})
	if u, _ := f.st.AbsentUntil(ctx, "bucho@test.jp"); u.IsZero() {
		t.Error("the absence was not set")
	}
	bucho.post("/outbound/absence", url.Values{"back": {"1"}, "csrf": {bucho.csrf}})
	if u, _ := f.st.AbsentUntil(ctx, "bucho@test.jp"); !u.IsZero() {
		t.Error("the absence was not cleared")
	}
}

// The approval mail's link: following it only shows; its form decides
// for the approver it names; an altered or foreign one is refused.
func TestApprovalLink(t *testing.T) {
	f := outboundFixture(t)
	ctx := context.Background()
	r := f.hold(t, approval.PolicyApproval)
	key, err := approval.LinkKey(ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	link := "/outbound/link/" + approval.SignLink(key, r.ID, "kakari@test.jp", r.Expires)
	anon := f.client(t)
	resp, body := anon.get(link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "本文です") || !strings.Contains(body, "kakari@test.jp") {
		t.Fatalf("the link's page: %d\n%s", resp.StatusCode, body)
	}
	if got, _ := f.st.Request(ctx, r.ID); got.State != store.StatePending {
		t.Fatal("following the link decided")
	}
	for name, l := range map[string]string{
		"altered":      link[:len(link)-3] + "AAA",
		"not approver": "/outbound/link/" + approval.SignLink(key, r.ID, "sato@test.jp", r.Expires),
		"expired":      "/outbound/link/" + approval.SignLink(key, r.ID, "kakari@test.jp", time.Now().Add(-time.Minute)),
	} {
		if resp, _ := anon.post(l, url.Values{"decision": {"approve"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	if resp, _ := anon.post(link, url.Values{"decision": {"approve"}}, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site: %d", resp.StatusCode)
	}
	if resp, _ := anon.post(link, url.Values{"decision": {"cancel"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the link cancelled as the sender: %d", resp.StatusCode)
	}
	resp, body = anon.post(link, url.Values{"decision": {"reject"}, "comment": {"宛先違い"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "却下しました") {
		t.Fatalf("rejecting by the link: %d\n%s", resp.StatusCode, body)
	}
	got := waitRequest(t, f.st, r.ID, func(r store.Request) bool { return !r.DoneAt.IsZero() })
	if got.State != store.StateDenied || got.DecidedBy != "kakari@test.jp" || got.Comment != "宛先違い" {
		t.Errorf("decided %+v", got)
	}
}

func TestLDAPRole(t *testing.T) {
	if ldapRole("CN=Kacho, OU=groups,dc=city") != ldapRole("cn=kacho,ou=groups,DC=City") {
		t.Error("one group, two roles")
	}
	if ldapRole("cn=kacho,ou=groups,dc=city") == ldapRole("cn=bucho,ou=groups,dc=city") || strings.Contains(ldapRole("cn=a,dc=b"), ",") {
		t.Error("the role does not tell groups apart or has a comma")
	}
}

// A directory group's approval mail goes to its mailing list: the link
// in it decides in the list's name.
func TestApprovalLinkOfAMailingList(t *testing.T) {
	f := newFixtureSections(t, func(sec *gateway.Sections) {
		sec.Relay.Outbound = guard.OutboundConfig{
			Groups: []guard.GroupConfig{{Name: "kacho", Members: []string{"ldap-group:cn=kacho,dc=test"}, Notify: []string{"kacho-ml@test.jp"}}},
			Rules:  []guard.OutboundRuleConfig{{Destination: guard.DestOutside, Approve: "kacho"}},
		}
	}, "", "", func(c *Config) { c.LDAP.URL = "ldap://127.0.0.1:1/dc=test" })
	r := f.hold(t, approval.PolicyApproval)
	key, _ := approval.LinkKey(context.Background(), f.st)
	anon := f.client(t)
	if resp, _ := anon.get("/outbound/link/" + approval.SignLink(key, r.ID, "kacho-ml@test.jp", r.Expires)); resp.StatusCode != http.StatusOK {
		t.Errorf("the list's link: %d", resp.StatusCode)
	}
	if resp, _ := anon.get("/outbound/link/" + approval.SignLink(key, r.ID, "someone@test.jp", r.Expires)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("someone else's link: %d", resp.StatusCode)
	}
}
