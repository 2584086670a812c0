package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/store"
)

// storeFor returns the store, or answers that it is unavailable.
func (s *Server) storeFor(w http.ResponseWriter, r *http.Request, u *user) (*store.Store, bool) {
	st := s.eng.Store()
	if st == nil {
		s.notFound(w, r, u, errUnavailable)
	}
	return st, st != nil
}

// notFound answers for an object that does not exist or is not the
// user's (the same answer: nobody learns what others have), and records
// the attempt.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, u *user, err error) {
	if errors.Is(err, errUnavailable) || errors.Is(err, approval.ErrUnavailable) {
		s.fail(w, r, u, http.StatusServiceUnavailable, "err.unavailable")
		return
	}
	if !errors.Is(err, errNotFound) {
		s.log.Error("console", "kind", "store", "path", r.URL.Path, "error", err)
		s.fail(w, r, u, http.StatusInternalServerError, "err.internal")
		return
	}
	who := "-" // u is nil on the pages an approval link opens without signing in
	if u != nil {
		who = u.Principal
	}
	s.audit(r, who, "denied", r.URL.Path, "not found or not theirs", false)
	s.fail(w, r, u, http.StatusNotFound, "err.not_found")
}

func (s *Server) myQuarantine(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	list, err := st.ListQuarantine(r.Context(), store.QuarantineQuery{Rcpt: u.Principal, Limit: 200})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	items := make([]item, len(list))
	for i, it := range list {
		items[i] = s.withReport(it)
	}
	s.render(w, r, u, http.StatusOK, "my_quarantine", map[string]any{"Items": items})
}

// item shows one original: what was removed and why, the text the
// recipient got, the requests for it; the form to ask for it (its
// recipients), the administrator's actions.
func (s *Server) item(w http.ResponseWriter, r *http.Request, u *user) {
	it, err := s.itemFor(r.Context(), u, r.PathValue("inst"), r.PathValue("id"))
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	st := s.eng.Store()
	reqs, _ := st.Requests(r.Context(), store.RequestQuery{Kind: store.KindRelease, Instance: it.Instance, Item: it.ID})
	var mine []store.Request
	open := false
	for _, q := range reqs {
		if q.Requester == u.Principal || u.Is(roleApprover) {
			mine = append(mine, q)
		}
		if q.Requester == u.Principal && q.Open() {
			open = true
		}
	}
	s.audit(r, u.Principal, "view", it.ID, "the sanitized text and report", true)
	s.render(w, r, u, http.StatusOK, "item", map[string]any{"Item": it, "Requests": mine,
		"CanAsk": it.HasRcpt(u.Principal) && !open, "Local": it.Instance == s.eng.Instance(),
		"Held": s.heldArchives(r.Context(), it), "Recipient": it.HasRcpt(u.Principal)})
}

// maxReason bounds a request's reason and a decision's comment.
const maxReason = 1000

func (s *Server) requestRelease(w http.ResponseWriter, r *http.Request, u *user) {
	it, err := s.itemFor(r.Context(), u, r.PathValue("inst"), r.PathValue("id"))
	if err == nil && !it.HasRcpt(u.Principal) {
		err = errNotFound // administrators release with their own form
	}
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if len(reason) > maxReason {
		s.fail(w, r, u, http.StatusBadRequest, "err.too_long", maxReason)
		return
	}
	if it.Policy == PolicyApproval && reason == "" {
		s.fail(w, r, u, http.StatusBadRequest, "err.reason_needed")
		return
	}
	req, err := s.eng.Approvals().Ask(r.Context(), store.Request{Kind: store.KindRelease, Instance: it.Instance, Item: it.ID,
		Requester: u.Principal, Recipients: []string{u.Principal}, Reason: reason, Policy: it.Policy})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, u.Principal, "request", it.ID, fmt.Sprintf("request %d (%s): %s", req.ID, it.Policy, reason), true)
	done := "requested"
	if it.Policy == PolicySelf {
		done = "released"
	}
	http.Redirect(w, r, "/my/requests?"+url.Values{"done": {done}}.Encode(), http.StatusSeeOther)
}

// request is a request with the item it is about, for listing.
type request struct {
	store.Request
	Item *item
}

func (s *Server) withItems(r *http.Request, reqs []store.Request) []request {
	st := s.eng.Store()
	out := make([]request, len(reqs))
	for i, q := range reqs {
		out[i].Request = q
		if it, err := st.QuarantineEntry(r.Context(), q.Instance, q.Item); err == nil {
			x := s.withReport(it)
			out[i].Item = &x
		}
	}
	return out
}

func (s *Server) myRequests(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	reqs, err := st.Requests(r.Context(), store.RequestQuery{Kind: store.KindRelease, Requester: u.Principal, Limit: 200})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.render(w, r, u, http.StatusOK, "my_requests", map[string]any{"Requests": s.withItems(r, reqs)})
}

func (s *Server) cancelRequest(w http.ResponseWriter, r *http.Request, u *user) {
	q, err := s.requestFor(r.Context(), u, r.PathValue("rid"))
	if err == nil && q.Requester != u.Principal {
		err = errNotFound
	}
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	if _, err := s.eng.Approvals().Cancel(r.Context(), q.ID, u.Principal); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.fail(w, r, u, http.StatusConflict, "err.already_decided")
			return
		}
		s.notFound(w, r, u, err) // the store: 503 or 500, logged
		return
	}
	s.audit(r, u.Principal, "cancel", q.Item, fmt.Sprintf("request %d", q.ID), true)
	http.Redirect(w, r, "/my/requests?done=cancelled", http.StatusSeeOther)
}

func (s *Server) approvals(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	pending, err := st.Requests(r.Context(), store.RequestQuery{Kind: store.KindRelease, States: []string{store.StatePending}})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	recent, _ := st.Requests(r.Context(), store.RequestQuery{Kind: store.KindRelease,
		States: []string{store.StateApproved, store.StateDenied, store.StateStarted, store.StateDone, store.StateFailed}, Limit: 50})
	s.render(w, r, u, http.StatusOK, "approvals", map[string]any{"Pending": s.withItems(r, pending), "Recent": recent})
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, u *user) {
	q, err := s.requestFor(r.Context(), u, r.PathValue("rid"))
	if err == nil && q.Kind != store.KindRelease {
		err = errNotFound // held outbound mail is decided by its group (outbound.go)
	}
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	decision := r.PostFormValue("decision")
	if decision != "approve" && decision != "deny" {
		s.fail(w, r, u, http.StatusBadRequest, "err.bad_decision")
		return
	}
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	if len(comment) > maxReason {
		s.fail(w, r, u, http.StatusBadRequest, "err.too_long", maxReason)
		return
	}
	if _, err := s.eng.Approvals().Decide(r.Context(), q.ID, decision == "approve", u.Principal, comment); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.fail(w, r, u, http.StatusConflict, "err.already_decided")
			return
		}
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, u.Principal, decision, q.Item, fmt.Sprintf("request %d by %s: %s", q.ID, q.Requester, comment), true)
	done := "approved"
	if decision == "deny" {
		done = "denied"
	}
	http.Redirect(w, r, "/approvals?done="+done, http.StatusSeeOther)
}
