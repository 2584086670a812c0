package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sekisho/sekisho/relay/approval"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/store"
)

// Password archives the sanitize stage held (reconstruct.encrypted:
// unlock): on the message's page its recipient types the password; the
// gateway holding the original tries it (relay/approval's
// UnlockExecutor) and, when it is right, sends the files rebuilt as a
// follow-up, through an unlock request approved at once. Wrong passwords
// are counted in the store (five lock the archive until an administrator
// unlocks it). Every attempt is audited; the password never is.

// heldArchive is a held archive as the item page shows it.
type heldArchive struct {
	sanitize.Attachment
	store.Unlock
	Locked bool
	Left   int // attempts left
}

// heldArchives lists the archives held with it, with their state.
func (s *Server) heldArchives(ctx context.Context, it item) []heldArchive {
	if it.Report == nil || len(it.Report.Held) == 0 {
		return nil
	}
	st := s.eng.Store()
	var out []heldArchive
	for _, a := range it.Report.Held {
		h := heldArchive{Attachment: a}
		if st != nil {
			h.Unlock, _ = st.UnlockState(ctx, it.Instance, it.ID, a.Path)
		}
		h.Left = max(approval.MaxUnlockFailures-h.Failures, 0)
		h.Locked = h.Left == 0
		out = append(out, h)
	}
	return out
}

// unlockTarget checks the item and part a form names: the recipient's
// own message, an archive held with it, on this gateway.
func (s *Server) unlockTarget(w http.ResponseWriter, r *http.Request, u *user, admin bool) (item, string, bool) {
	it, err := s.itemFor(r.Context(), u, r.PathValue("inst"), r.PathValue("id"))
	if err == nil && !admin && !it.HasRcpt(u.Principal) {
		err = errNotFound // an administrator opens nothing for someone else
	}
	part := r.PostFormValue("part")
	if err == nil {
		err = errNotFound
		for _, a := range heldOf(it) {
			if a.Path == part {
				err = nil
			}
		}
	}
	if err != nil {
		s.notFound(w, r, u, err)
		return item{}, "", false
	}
	if it.Instance != s.eng.Instance() || s.eng.Unlocker() == nil {
		s.fail(w, r, u, http.StatusConflict, "unlock.elsewhere", it.Instance)
		return item{}, "", false
	}
	return it, part, true
}

func heldOf(it item) []sanitize.Attachment {
	if it.Report == nil {
		return nil
	}
	return it.Report.Held
}

func (s *Server) unlock(w http.ResponseWriter, r *http.Request, u *user) {
	it, part, ok := s.unlockTarget(w, r, u, false)
	if !ok {
		return
	}
	st, ok := s.storeFor(w, r, u)
	if !ok {
		return
	}
	page := "/quarantine/" + url.PathEscape(it.Instance) + "/" + url.PathEscape(it.ID)
	object := it.ID + " part " + part
	tries, err := st.UnlockTry(r.Context(), it.Instance, it.ID, part, approval.MaxUnlockFailures)
	if errors.Is(err, store.ErrLocked) {
		s.audit(r, u.Principal, "unlock", object, "refused: locked after too many wrong passwords", false)
		http.Redirect(w, r, page+"?done=unlock_locked", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	n, err := s.eng.Unlocker().Open(r.Context(), it.ID, part, r.PostFormValue("password"))
	if approval.IsWrongPassword(err) {
		s.audit(r, u.Principal, "unlock", object, fmt.Sprintf("wrong password (%d of %d)", tries, approval.MaxUnlockFailures), false)
		done := "unlock_wrong"
		if tries >= approval.MaxUnlockFailures {
			done = "unlock_locked"
		}
		http.Redirect(w, r, page+"?done="+done, http.StatusSeeOther)
		return
	}
	// Right, or failed for another reason: the attempt does not count.
	if derr := st.UnlockDone(r.Context(), it.Instance, it.ID, part, err == nil); derr != nil {
		s.log.Error("recording an archive's opening", "kind", "store", "release_id", it.ID, "error", derr)
	}
	if err != nil {
		s.audit(r, u.Principal, "unlock", object, "could not be opened: "+err.Error(), false)
		s.fail(w, r, u, http.StatusUnprocessableEntity, "unlock.failed", err.Error())
		return
	}
	req, err := s.eng.Approvals().Ask(r.Context(), store.Request{Kind: store.KindUnlock, Instance: it.Instance, Item: it.ID,
		Requester: u.Principal, Recipients: []string{u.Principal}, Reason: part, Policy: approval.PolicySelf})
	if err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, u.Principal, "unlock", object, fmt.Sprintf("opened: %d files, sent as request %d", n, req.ID), true)
	http.Redirect(w, r, "/my/requests?done=unlocked", http.StatusSeeOther)
}

// unlockReset is an administrator unlocking an archive locked by wrong
// passwords.
func (s *Server) unlockReset(w http.ResponseWriter, r *http.Request, u *user) {
	it, part, ok := s.unlockTarget(w, r, u, true)
	if !ok {
		return
	}
	if err := s.eng.Store().UnlockReset(r.Context(), it.Instance, it.ID, part); err != nil {
		s.notFound(w, r, u, err)
		return
	}
	s.audit(r, u.Principal, "unlock-reset", it.ID+" part "+part, "wrong passwords forgotten", true)
	http.Redirect(w, r, "/quarantine/"+url.PathEscape(it.Instance)+"/"+url.PathEscape(it.ID)+"?done=unlock_reset", http.StatusSeeOther)
}
