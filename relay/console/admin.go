package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
)

// dashboard: the queue by state, the last hour's and day's traffic, the
// spool's disk, recent refusals by rule, what waits for a decision.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, u *user) {
	q := s.eng.Queue()
	stats := q.Stats()
	byState := map[string]int{}
	for _, m := range q.List() {
		for _, st := range m.Rcpts {
			if m.Held && !st.Status.Final() {
				byState["held"]++
				continue
			}
			byState[st.Status.String()]++
		}
	}
	data := map[string]any{"Stats": stats, "ByState": byState, "Health": q.Health(), "Reserve": int64(s.eng.Config().Queue.Reserve),
		"Dropped": s.eng.EventsDropped()}
	if st := s.eng.Store(); st != nil {
		now := s.opt.Now()
		hour, _ := st.CountEvents(r.Context(), now.Add(-time.Hour))
		day, _ := st.CountEvents(r.Context(), now.Add(-24*time.Hour))
		data["Hour"], data["Day"] = rates(hour), rates(day)
		data["Rules"], _ = st.RefusalsByRule(r.Context(), now.Add(-24*time.Hour), 10)
		data["Pending"], _ = st.CountRequests(r.Context(), store.RequestQuery{States: []string{store.StatePending}})
		data["Quarantined"], _ = st.CountQuarantine(r.Context())
	}
	s.render(w, r, u, http.StatusOK, "dashboard", data)
}

// traffic is one period's figures: recipients accepted, refusals,
// deliveries and their failures.
type traffic struct{ Accepted, Refused, Delivered, Deferred, Failed, Sanitized int }

func rates(cs []store.EventCount) traffic {
	var t traffic
	for _, c := range cs {
		switch {
		case c.Kind == "receive":
			t.Accepted += c.Count
		case c.Kind == "reject":
			t.Refused += c.Count
		case c.Kind == "sanitize":
			t.Sanitized += c.Count
		case c.Result == "delivered":
			t.Delivered += c.Count
		case c.Result == "deferred":
			t.Deferred += c.Count
		case c.Result == "failed":
			t.Failed += c.Count
		}
	}
	return t
}

// maxListed bounds the messages a queue page lists.
const maxListed = 500

func (s *Server) queueList(w http.ResponseWriter, r *http.Request, u *user) {
	state := r.URL.Query().Get("state")
	text := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	var out []queue.Message
	total := 0
	for _, m := range s.eng.Queue().List() {
		if !queueMatch(m, state, text) {
			continue
		}
		total++
		if len(out) < maxListed {
			out = append(out, m)
		}
	}
	s.render(w, r, u, http.StatusOK, "queue", map[string]any{"Messages": out, "Total": total, "State": state, "Q": r.URL.Query().Get("q")})
}

func queueMatch(m queue.Message, state, text string) bool {
	switch state {
	case "held":
		if !m.Held {
			return false
		}
	case "deferred", "pending":
		found := false
		for _, st := range m.Rcpts {
			found = found || st.Status.String() == state
		}
		if !found || m.Held {
			return false
		}
	}
	if text == "" {
		return true
	}
	if strings.Contains(strings.ToLower(m.ID.String()), text) || strings.Contains(strings.ToLower(m.Envelope.From), text) {
		return true
	}
	for _, rc := range m.Envelope.Rcpts {
		if strings.Contains(strings.ToLower(rc.Addr), text) {
			return true
		}
	}
	return false
}

// maxShownHeader bounds the header a page shows.
const maxShownHeader = 64 << 10

func (s *Server) queueShow(w http.ResponseWriter, r *http.Request, u *user) {
	id, err := queue.ParseID(r.PathValue("qid"))
	if err != nil {
		s.notFound(w, r, u, errNotFound)
		return
	}
	q := s.eng.Queue()
	m, err := q.Get(id)
	if err != nil {
		s.notFound(w, r, u, errNotFound)
		return
	}
	header := ""
	if rc, err := q.Open(id); err == nil {
		h, _ := rewrite.ReadHeader(bufio.NewReader(io.LimitReader(rc, maxShownHeader)), maxShownHeader)
		rc.Close()
		header = string(h)
	}
	subject := ""
	if msg, err := mail.ReadMessage(strings.NewReader(header + "\r\n")); err == nil {
		subject = sanitize.DecodeHeader(msg.Header.Get("Subject"))
	}
	s.render(w, r, u, http.StatusOK, "queue_message", map[string]any{"M": m, "Header": header, "Subject": subject})
}

// queueChange is `sekisho queue retry|hold|release|delete ID`: the same
// queue.Spool.Do the command's control file reaches.
func (s *Server) queueChange(w http.ResponseWriter, r *http.Request, u *user) {
	id, err := queue.ParseID(r.PathValue("qid"))
	op := r.PathValue("op")
	if err != nil {
		s.notFound(w, r, u, errNotFound)
		return
	}
	switch op {
	case queue.OpRetry, queue.OpHold, queue.OpRelease, queue.OpDelete:
	default:
		s.fail(w, r, u, http.StatusBadRequest, "err.bad_operation")
		return
	}
	res, err := s.eng.Queue().Do(queue.Command{Op: op, IDs: []queue.ID{id}})
	ok := err == nil && len(res.Done) == 1
	s.audit(r, u.Principal, "queue-"+op, id.String(), errText(err), ok)
	if len(res.Missing) > 0 {
		s.fail(w, r, u, http.StatusNotFound, "err.queue_gone")
		return
	}
	if err != nil {
		s.fail(w, r, u, http.StatusInternalServerError, "err.queue_change", err.Error())
		return
	}
	if op == queue.OpDelete {
		http.Redirect(w, r, "/admin/queue?done=queue_"+op, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/admin/queue/"+url.PathEscape(id.String())+"?done=queue_"+op, http.StatusSeeOther)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Server) quarantineList(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	q := r.URL.Query()
	list, err := st.ListQuarantine(r.Context(), store.QuarantineQuery{Rcpt: q.Get("rcpt"), Sender: q.Get("sender"), ID: q.Get("id"), Limit: 200})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	items := make([]item, len(list))
	for i, it := range list {
		items[i] = s.withReport(it)
	}
	pending, _ := st.CountRequests(r.Context(), store.RequestQuery{Kind: store.KindRelease, States: []string{store.StatePending}})
	s.render(w, r, u, http.StatusOK, "quarantine", map[string]any{"Items": items, "Pending": pending,
		"Rcpt": q.Get("rcpt"), "Sender": q.Get("sender"), "ID": q.Get("id")})
}

// adminRelease sends an original to an address an administrator names
// (`sekisho quarantine release ID --to ADDR`), carried out by the gateway
// that holds it.
func (s *Server) adminRelease(w http.ResponseWriter, r *http.Request, u *user) {
	it, err := s.itemFor(r.Context(), u, r.PathValue("inst"), r.PathValue("id"))
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	var to []string
	for _, a := range strings.FieldsFunc(r.PostFormValue("to"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' }) {
		p, err := mail.ParseAddress(a)
		if err != nil || p.Name != "" || strings.ContainsAny(p.Address, "<>") {
			s.fail(w, r, u, http.StatusBadRequest, "err.bad_address", a)
			return
		}
		to = append(to, p.Address)
	}
	if len(to) == 0 {
		to = it.Rcpts // the original recipients
	}
	req, err := s.eng.Approvals().Ask(r.Context(), store.Request{Kind: store.KindRelease, Instance: it.Instance, Item: it.ID,
		Requester: u.Principal, Recipients: to, Reason: strings.TrimSpace(r.PostFormValue("reason")), Policy: approval.PolicyAdmin})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, u.Principal, "request", it.ID, fmt.Sprintf("request %d: release to %s", req.ID, strings.Join(to, ", ")), true)
	http.Redirect(w, r, "/quarantine/"+url.PathEscape(it.Instance)+"/"+url.PathEscape(it.ID)+"?done=release_asked", http.StatusSeeOther)
}

// purge removes an original now (`sekisho quarantine purge ID`): only the
// gateway that holds it can.
func (s *Server) purge(w http.ResponseWriter, r *http.Request, u *user) {
	it, err := s.itemFor(r.Context(), u, r.PathValue("inst"), r.PathValue("id"))
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	qs := s.eng.Quarantine()
	if it.Instance != s.eng.Instance() || qs == nil {
		s.fail(w, r, u, http.StatusConflict, "err.elsewhere", it.Instance)
		return
	}
	err = qs.Delete(it.ID)
	if err == nil || errors.Is(err, quarantine.ErrNotFound) {
		err = s.eng.Store().DeleteQuarantine(r.Context(), it.Instance, it.ID)
	}
	s.audit(r, u.Principal, "purge", it.ID, errText(err), err == nil)
	if err != nil {
		s.fail(w, r, u, http.StatusInternalServerError, "err.internal")
		return
	}
	http.Redirect(w, r, "/admin/quarantine?done=purged", http.StatusSeeOther)
}

// original downloads the original as an attachment (never shown inline,
// never sniffed), for an administrator, audited.
func (s *Server) original(w http.ResponseWriter, r *http.Request, u *user) {
	it, err := s.itemFor(r.Context(), u, r.PathValue("inst"), r.PathValue("id"))
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	qs := s.eng.Quarantine()
	if it.Instance != s.eng.Instance() || qs == nil {
		s.fail(w, r, u, http.StatusConflict, "err.elsewhere", it.Instance)
		return
	}
	rc, err := qs.Open(it.ID)
	if err != nil {
		s.notFound(w, r, u, errNotFound)
		return
	}
	defer rc.Close()
	s.audit(r, u.Principal, "view-original", it.ID, "downloaded", true)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+it.ID+`.eml"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	io.Copy(w, rc)
}

func (s *Server) configPage(w http.ResponseWriter, r *http.Request, u *user) {
	if s.opt.Config == nil {
		s.fail(w, r, u, http.StatusNotFound, "err.not_found")
		return
	}
	s.render(w, r, u, http.StatusOK, "config", s.opt.Config())
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	q := r.URL.Query()
	recs, err := st.Audit(r.Context(), store.AuditQuery{Actor: q.Get("actor"), Object: q.Get("object"), Action: q.Get("action"), Limit: 300})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	sessions, _ := st.Sessions(r.Context(), s.opt.Now()) // the latest seen first
	s.render(w, r, u, http.StatusOK, "audit", map[string]any{"Records": recs, "Sessions": sessions,
		"Actor": q.Get("actor"), "Object": q.Get("object"), "Action": q.Get("action")})
}

// revokeSessions ends every session of a principal (someone left, a
// password was leaked).
func (s *Server) revokeSessions(w http.ResponseWriter, r *http.Request, u *user) {
	p := strings.TrimSpace(r.PostFormValue("principal"))
	st := s.eng.Store()
	if st == nil || p == "" {
		s.notFound(w, r, u, errUnavailable)
		return
	}
	n, err := st.RevokeSessions(r.Context(), p)
	s.audit(r, u.Principal, "revoke-sessions", p, fmt.Sprintf("%d sessions", n), err == nil)
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	http.Redirect(w, r, "/admin/audit?done=revoked", http.StatusSeeOther)
}
