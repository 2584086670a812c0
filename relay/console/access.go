package console

import (
	"context"
	"errors"
	"strconv"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
)

// Who may see what: every object a URL names is checked here, and only
// here. An object someone may not see answers as if it did not exist.

var errNotFound = errors.New("no such item")

// item is a quarantined original as a page shows it.
type item struct {
	store.QuarantineItem
	Report *sanitize.Report
	Policy string // self or approval, for its recipients
}

// itemFor returns the quarantine item inst/id if u may see it: an
// administrator any; a recipient their own; an approver one someone asked
// for.
func (s *Server) itemFor(ctx context.Context, u *user, inst, id string) (item, error) {
	st := s.eng.Store()
	if st == nil {
		return item{}, errUnavailable
	}
	if !quarantine.ValidID(id) || inst == "" {
		return item{}, errNotFound
	}
	it, err := st.QuarantineEntry(ctx, inst, id)
	if errors.Is(err, store.ErrNotFound) {
		return item{}, errNotFound
	}
	if err != nil {
		return item{}, err
	}
	ok := u.Is(roleAdmin) || it.HasRcpt(u.Principal)
	if !ok && u.Is(roleApprover) {
		reqs, err := st.Requests(ctx, store.RequestQuery{Kind: store.KindRelease, Instance: inst, Item: id, Limit: 1})
		ok = err == nil && len(reqs) > 0
	}
	if !ok {
		return item{}, errNotFound
	}
	return s.withReport(it), nil
}

func (s *Server) withReport(it store.QuarantineItem) item {
	out := item{QuarantineItem: it}
	if it.Report != "" {
		out.Report, _ = sanitize.EntryReport(quarantine.Entry{ID: it.ID, Report: []byte(it.Report)})
	}
	out.Policy = s.cfg.Release.releasePolicy(it.Route, out.Report)
	return out
}

// requestFor returns request rid if u may see it: its requester, an
// approver or an administrator.
func (s *Server) requestFor(ctx context.Context, u *user, rid string) (store.Request, error) {
	st := s.eng.Store()
	if st == nil {
		return store.Request{}, errUnavailable
	}
	n, err := strconv.ParseInt(rid, 10, 64)
	if err != nil || n <= 0 {
		return store.Request{}, errNotFound
	}
	r, err := st.Request(ctx, n)
	if errors.Is(err, store.ErrNotFound) {
		return r, errNotFound
	}
	if err != nil {
		return r, err
	}
	if r.Requester != u.Principal && !u.Is(roleApprover) {
		return store.Request{}, errNotFound
	}
	return r, nil
}

// held is a held outbound message's request as a page shows it, with
// what the user may do with it.
type held struct {
	store.Request
	Detail approval.OutboundDetail
	// Sender: the user sent it; Decider: the user may approve or reject
	// it (a member or delegate of its group, or an administrator).
	Sender, Decider bool
}

// heldFor returns outbound request rid if u may see it: its sender, a
// member or delegate of its approval group, or an administrator.
func (s *Server) heldFor(ctx context.Context, u *user, rid string) (held, error) {
	st := s.eng.Store()
	if st == nil {
		return held{}, errUnavailable
	}
	n, err := strconv.ParseInt(rid, 10, 64)
	if err != nil || n <= 0 {
		return held{}, errNotFound
	}
	r, err := st.Request(ctx, n)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.Kind != store.KindOutbound {
		return held{}, errNotFound
	}
	if err != nil {
		return held{}, err
	}
	h := s.heldAs(r, u.Principal, u.inLDAP, u.Is(roleAdmin))
	if !h.Sender && !h.Decider {
		return held{}, errNotFound
	}
	return h, nil
}

// heldAs is r as principal sees it: whether they sent it, whether they
// may decide it (inLDAP: their directory groups at sign-in).
func (s *Server) heldAs(r store.Request, principal string, inLDAP func(string) bool, admin bool) held {
	h := held{Request: r, Detail: approval.ParseOutboundDetail(r), Sender: r.Requester == principal, Decider: admin}
	// Nobody approves their own message but an administrator.
	if g, ok := s.eng.Outbound().Group(r.Group); ok && r.Group != "" && !h.Sender {
		h.Decider = h.Decider || g.Member(principal, inLDAP) || g.Delegate(principal, inLDAP)
	}
	return h
}
