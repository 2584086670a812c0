package console

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/store"
)

// Held outbound mail (relay.outbound): its sender's page ("my held
// mail": send now, cancel), the approvers' page ("to approve": the
// message's envelope, header, text and files, a decision with a comment;
// an approver's absence), the decision by the approval mail's signed
// link, and the administrators' history. Every decision goes through
// relay/approval, which the gateway holding the message carries out, and
// is audited.

// roleOutbound marks, at sign-in, someone in an approval group.
const roleOutbound = "outbound-approver"

// ldapRole is the role that says, at sign-in, that the user belongs to
// the directory group dn: roles keep no DNs (commas), so a fingerprint of
// its normalized form stands for it.
func ldapRole(dn string) string {
	norm := strings.ToLower(strings.TrimSpace(dn))
	if d, err := ldap.ParseDN(dn); err == nil {
		var rdns []string
		for _, r := range d.RDNs {
			var avs []string
			for _, a := range r.Attributes {
				avs = append(avs, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
			}
			rdns = append(rdns, strings.Join(avs, "+"))
		}
		norm = strings.Join(rdns, ",")
	}
	h := sha256.Sum256([]byte(norm))
	return "ldap:" + hex.EncodeToString(h[:8])
}

// inLDAP reports whether the user was in directory group dn when they
// signed in.
func (u *user) inLDAP(dn string) bool { return u.Is(ldapRole(dn)) }

// outboundRoles are a new sign-in's roles for the approval groups: the
// directory groups of theirs that a group names, and roleOutbound when
// they may decide for some group.
func (s *Server) outboundRoles(principal string, groups []string) []string {
	o := s.eng.Outbound()
	if o == nil {
		return nil
	}
	var rs []string
	seen := map[string]bool{}
	for _, g := range o.Groups() {
		for _, dn := range g.LDAPGroups() {
			for _, mine := range groups {
				if role := ldapRole(dn); sameDN(mine, dn) && !seen[role] {
					seen[role] = true
					rs = append(rs, role)
				}
			}
		}
	}
	in := func(dn string) bool { return seen[ldapRole(dn)] }
	for _, g := range o.Groups() {
		if g.Member(principal, in) || g.Delegate(principal, in) {
			return append(rs, roleOutbound)
		}
	}
	return rs
}

// decidesFor lists the approval groups u may decide for now (the
// configuration in force; directory groups as at sign-in).
func (s *Server) decidesFor(u *user) []string {
	var out []string
	for _, g := range s.eng.Outbound().Groups() {
		if g.Member(u.Principal, u.inLDAP) || g.Delegate(u.Principal, u.inLDAP) {
			out = append(out, g.Name)
		}
	}
	return out
}

func (s *Server) myHeld(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	reqs, err := st.Requests(r.Context(), store.RequestQuery{Kind: store.KindOutbound, Requester: u.Principal, Limit: 200})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.render(w, r, u, http.StatusOK, "my_held", map[string]any{"Held": s.heldList(reqs, u)})
}

func (s *Server) heldList(reqs []store.Request, u *user) []held {
	out := make([]held, len(reqs))
	for i, q := range reqs {
		out[i] = s.heldAs(q, u.Principal, u.inLDAP, u.Is(roleAdmin))
	}
	return out
}

// toApprove lists what waits for the user's decision, the requests they
// decided lately, and their absence.
func (s *Server) toApprove(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	groups := s.decidesFor(u)
	if len(groups) == 0 && !u.Is(roleAdmin) {
		s.fail(w, r, u, http.StatusForbidden, "err.forbidden")
		return
	}
	q := store.RequestQuery{Kind: store.KindOutbound, States: []string{store.StatePending}, Groups: groups}
	if u.Is(roleAdmin) {
		q.Groups = nil // administrators see every group's
	}
	pending, err := st.Requests(r.Context(), q)
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	var list []held
	for _, h := range s.heldList(pending, u) {
		if h.Policy == approval.PolicyApproval || u.Is(roleAdmin) {
			list = append(list, h)
		}
	}
	away, _ := st.AbsentUntil(r.Context(), u.Principal)
	s.render(w, r, u, http.StatusOK, "outbound_approve", map[string]any{"Pending": list, "Groups": groups, "AwayUntil": away,
		"Tomorrow": s.opt.Now().Add(24 * time.Hour).Format("2006-01-02")})
}

// heldPage shows one held message: envelope, header, text, files, and
// the forms the user may use.
func (s *Server) heldPage(w http.ResponseWriter, r *http.Request, u *user) {
	h, err := s.heldFor(r.Context(), u, r.PathValue("rid"))
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, u.Principal, "view", h.Item, fmt.Sprintf("held message, request %d", h.ID), true)
	s.render(w, r, u, http.StatusOK, "outbound", map[string]any{"H": h, "Action": fmt.Sprintf("/outbound/%d", h.ID)})
}

// heldDecide: an approver's decision, the sender's "send now" or
// "cancel", or an administrator's.
func (s *Server) heldDecide(w http.ResponseWriter, r *http.Request, u *user) {
	h, err := s.heldFor(r.Context(), u, r.PathValue("rid"))
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	back := "/outbound/approve"
	if !h.Decider {
		back = "/my/held"
	}
	s.carryOut(w, r, u, u.Principal, h, back)
}

// carryOut records a decision on a held message: approve or reject (its
// group's approvers; administrators), send now (its sender, for a hold)
// or cancel (its sender).
func (s *Server) carryOut(w http.ResponseWriter, r *http.Request, u *user, by string, h held, back string) {
	decision := r.PostFormValue("decision")
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	if len(comment) > maxReason {
		s.fail(w, r, u, http.StatusBadRequest, "err.too_long", maxReason)
		return
	}
	allowed := map[string]bool{
		"approve": h.Decider, "reject": h.Decider,
		"send": h.Sender && h.Policy == approval.PolicyHold, "cancel": h.Sender,
	}
	if !allowed[decision] {
		s.fail(w, r, u, http.StatusBadRequest, "err.bad_decision")
		return
	}
	svc := s.eng.Approvals()
	if svc == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "err.unavailable")
		return
	}
	var err error
	switch decision {
	case "approve", "send":
		_, err = svc.Decide(r.Context(), h.ID, true, by, comment)
	case "reject":
		_, err = svc.Decide(r.Context(), h.ID, false, by, comment)
	case "cancel":
		_, err = svc.Cancel(r.Context(), h.ID, by)
	}
	if errors.Is(err, store.ErrConflict) {
		s.fail(w, r, u, http.StatusConflict, "err.already_decided")
		return
	}
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, by, "outbound-"+decision, h.Item, fmt.Sprintf("request %d from %s (%s): %s", h.ID, h.Requester, h.Reason, comment), true)
	http.Redirect(w, r, back+"?"+url.Values{"done": {"outbound_" + decision}}.Encode(), http.StatusSeeOther)
}

// absence sets or clears the user's absence: while away, the approval
// mail goes to the groups' delegates.
func (s *Server) absence(w http.ResponseWriter, r *http.Request, u *user) {
	if len(s.decidesFor(u)) == 0 && !u.Is(roleAdmin) {
		s.fail(w, r, u, http.StatusForbidden, "err.forbidden")
		return
	}
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	var until time.Time
	if v := r.PostFormValue("until"); v != "" && r.PostFormValue("back") == "" {
		d, err := time.ParseInLocation("2006-01-02", v, time.Local)
		if err != nil || !d.After(s.opt.Now().Add(-24*time.Hour)) {
			s.fail(w, r, u, http.StatusBadRequest, "err.bad_date")
			return
		}
		until = d.Add(24 * time.Hour) // to the end of that day
	}
	if err := st.SetAbsence(r.Context(), u.Principal, until); err != nil {
		s.notFound(w, r, u, err)
		return
	}
	detail := "back"
	if !until.IsZero() {
		detail = "away until " + until.Format(time.RFC3339)
	}
	s.audit(r, u.Principal, "absence", u.Principal, detail, true)
	http.Redirect(w, r, "/outbound/approve?done=absence", http.StatusSeeOther)
}

// heldHistory is the administrators' history of held mail.
func (s *Server) heldHistory(w http.ResponseWriter, r *http.Request, u *user) {
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	q := store.RequestQuery{Kind: store.KindOutbound, Limit: 500}
	state := r.URL.Query().Get("state")
	if state != "" {
		q.States = []string{state}
	}
	if who := strings.TrimSpace(r.URL.Query().Get("sender")); who != "" {
		q.Requester = who
	}
	reqs, err := st.Requests(r.Context(), q)
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.render(w, r, u, http.StatusOK, "outbound_history", map[string]any{"Held": s.heldList(reqs, u), "State": state,
		"Sender": r.URL.Query().Get("sender")})
}

// The signed link of the approval mail: no sign-in, the token names the
// request and the approver. GET shows the message and the form; only the
// form's POST decides.

func (s *Server) linkTarget(r *http.Request) (held, string, error) {
	st := s.eng.Store()
	if st == nil {
		return held{}, "", errUnavailable
	}
	key, err := approval.LinkKey(r.Context(), st)
	if err != nil {
		return held{}, "", err
	}
	id, approver, err := approval.ParseLink(key, r.PathValue("token"), s.opt.Now())
	if err != nil {
		return held{}, "", errNotFound
	}
	q, err := st.Request(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && q.Kind != store.KindOutbound {
		return held{}, "", errNotFound
	}
	if err != nil {
		return held{}, "", err
	}
	// The approver named must still be one (a reload may have removed
	// them): a member or delegate by address, or an address the group's
	// approval mail goes to (the mailing list of a directory group, whose
	// members cannot be told without a sign-in).
	h := s.heldAs(q, approver, nil, false)
	if g, ok := s.eng.Outbound().Group(q.Group); ok && q.Group != "" && g.Notified(approver) && !h.Sender {
		h.Decider = true
	}
	h.Sender = false
	if !h.Decider {
		return held{}, "", errNotFound
	}
	return h, approver, nil
}

func (s *Server) linkPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h, approver, err := s.linkTarget(r)
	if err != nil {
		s.linkFail(w, r, err)
		return
	}
	s.audit(r, approver, "view", h.Item, fmt.Sprintf("held message, request %d, by the approval mail's link", h.ID), true)
	s.render(w, r, nil, http.StatusOK, "outbound", map[string]any{"H": h, "Action": r.URL.Path, "Link": true, "Approver": approver})
}

func (s *Server) linkDecide(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		s.fail(w, r, nil, http.StatusForbidden, "err.csrf")
		return
	}
	h, approver, err := s.linkTarget(r)
	if err != nil {
		s.linkFail(w, r, err)
		return
	}
	s.carryOut(w, r, nil, approver, h, r.URL.Path)
}

func (s *Server) linkFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNotFound) {
		s.audit(r, "-", "denied", "/outbound/link", "an invalid or expired approval link", false)
		s.fail(w, r, nil, http.StatusNotFound, "err.bad_link")
		return
	}
	s.notFound(w, r, nil, err)
}
