package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/store"
)

// The message trace: `sekisho log search` as a form, and every event of
// one message on one page.

// ParseTraceTime reads a time as the form and the command take it: a
// local "2006-01-02 15:04", "2006-01-02T15:04" (the browser's
// datetime-local) or a day.
func ParseTraceTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (s *Server) traceSearch(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	q := r.URL.Query()
	eq := store.EventQuery{Sender: q.Get("sender"), Rcpt: q.Get("rcpt"), MessageID: q.Get("message_id"),
		QueueID: queue.CanonicalID(strings.TrimSpace(q.Get("queue_id"))), Client: q.Get("client"), Limit: 500}
	since, ok1 := ParseTraceTime(q.Get("since"))
	until, ok2 := ParseTraceTime(q.Get("until"))
	data := map[string]any{"Q": q}
	if !ok1 || !ok2 {
		data["Error"] = "trace.bad_time"
		s.render(w, r, u, http.StatusBadRequest, "trace", data)
		return
	}
	eq.Since, eq.Until = since, until
	if !eq.Empty() || !since.IsZero() {
		msgs, err := st.TraceSearch(r.Context(), eq)
		if err != nil {
			s.notFound(w, r, u, err)
			return
		}
		data["Messages"], data["Searched"] = msgs, true
	}
	s.render(w, r, u, http.StatusOK, "trace", data)
}

func (s *Server) traceMessage(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	id, err := queue.ParseID(r.PathValue("qid"))
	if err != nil {
		s.notFound(w, r, u, errNotFound)
		return
	}
	qid := id.String()
	evs, err := st.TraceMessage(r.Context(), qid)
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	audit, _ := st.Audit(r.Context(), store.AuditQuery{Object: qid, Limit: 100})
	_, qerr := s.eng.Queue().Get(id)
	s.render(w, r, u, http.StatusOK, "trace_message", map[string]any{"ID": qid, "Events": evs, "Audit": audit, "Queued": qerr == nil})
}

func (s *Server) traceSession(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	sid := r.PathValue("sid")
	if sid == "" || len(sid) > 64 || strings.ContainsAny(sid, " /\x00") {
		s.notFound(w, r, u, errNotFound)
		return
	}
	evs, err := st.SessionEvents(r.Context(), sid)
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.render(w, r, u, http.StatusOK, "trace_message", map[string]any{"Session": sid, "Events": evs})
}
