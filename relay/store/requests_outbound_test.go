package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Held outbound mail: the clock decides a pending request at its
// deadline unless someone did first; a denied or cancelled one is
// claimed once for removing its message and kept until that is done.
func TestOutboundRequests(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := t0
		s.SetClock(func() time.Time { return now })
		mk := func(item, onExpiry string, expires time.Duration) Request {
			r, err := s.CreateRequest(ctx, Request{Kind: KindOutbound, Instance: "gw1", Item: item, Requester: "Tanaka@City.lg.jp",
				Recipients: []string{"a@example.com", "b@example.com"}, Policy: "approval", State: StatePending,
				Expires: t0.Add(expires), OnExpiry: onExpiry, Group: "somu", Detail: `{"subject":"見積"}`})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		send := mk("Q1", ExpirySend, time.Hour)
		reject := mk("Q2", ExpiryReject, 2*time.Hour)
		decided := mk("Q3", ExpirySend, time.Hour)
		if got, _ := s.Request(ctx, send.ID); got.Group != "somu" || got.Detail != `{"subject":"見積"}` || !got.Expires.Equal(t0.Add(time.Hour)) ||
			got.OnExpiry != ExpirySend || got.Requester != "tanaka@city.lg.jp" {
			t.Errorf("read back %+v", got)
		}
		if _, err := s.Decide(ctx, decided.ID, false, "bucho@city.lg.jp", "no"); err != nil {
			t.Fatal(err)
		}
		if l, _ := s.Expired(ctx, KindOutbound, "gw1", t0.Add(59*time.Minute)); len(l) != 0 {
			t.Errorf("expired early: %+v", l)
		}
		now = t0.Add(3 * time.Hour)
		l, err := s.Expired(ctx, KindOutbound, "gw1", now)
		if err != nil || len(l) != 2 || l[0].ID != send.ID || l[1].ID != reject.ID {
			t.Fatalf("expired %+v %v", l, err)
		}
		if l, _ := s.Expired(ctx, KindOutbound, "gw2", now); len(l) != 0 {
			t.Errorf("another gateway's: %+v", l)
		}
		for _, r := range l {
			got, err := s.Expire(ctx, r)
			want := map[string]string{ExpirySend: StateApproved, ExpiryReject: StateDenied}[r.OnExpiry]
			if err != nil || got.State != want || got.DecidedBy != ExpiredBy {
				t.Errorf("expire %s: %+v %v", r.Item, got, err)
			}
			if _, err := s.Expire(ctx, r); !errors.Is(err, ErrConflict) {
				t.Errorf("expired twice: %v", err)
			}
		}
		// The denied ones wait for their gateway to remove the message.
		closed, _ := s.Requests(ctx, RequestQuery{Kind: KindOutbound, Instance: "gw1", States: []string{StateDenied, StateCancelled}, Unfinished: true})
		if len(closed) != 2 {
			t.Fatalf("closed %+v", closed)
		}
		if n, _ := s.PruneRequests(ctx, now.Add(time.Hour)); n != 0 {
			t.Errorf("pruned %d not yet removed", n)
		}
		for _, r := range closed {
			if _, err := s.ClaimClosed(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClaimClosed(ctx, r.ID); !errors.Is(err, ErrConflict) {
				t.Errorf("claimed twice: %v", err)
			}
			if got, err := s.FinishClosed(ctx, r.ID, "removed from the queue"); err != nil || got.DoneAt.IsZero() || got.State != StateDenied {
				t.Errorf("finish %+v %v", got, err)
			}
		}
		if _, err := s.ClaimClosed(ctx, send.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("claiming an approved one: %v", err)
		}
		if l, _ := s.Requests(ctx, RequestQuery{Groups: []string{"somu", "other"}, States: []string{StatePending}}); len(l) != 0 {
			t.Errorf("pending left %+v", l)
		}
		if n, _ := s.PruneRequests(ctx, now.Add(time.Hour)); n != 2 {
			t.Errorf("pruned %d, want the 2 removed", n)
		}
		if _, err := s.CreateRequest(ctx, Request{Kind: KindOutbound, Detail: string(make([]byte, maxDetail+1))}); err == nil {
			t.Error("an oversized detail stored")
		}
	})
}

func TestAbsence(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := t0
		s.SetClock(func() time.Time { return now })
		if u, err := s.AbsentUntil(ctx, "bucho@city.lg.jp"); err != nil || !u.IsZero() {
			t.Fatalf("never set: %v %v", u, err)
		}
		for _, until := range []time.Time{t0.Add(48 * time.Hour), t0.Add(24 * time.Hour)} {
			if err := s.SetAbsence(ctx, "Bucho@City.lg.jp", until); err != nil {
				t.Fatal(err)
			}
			if u, _ := s.AbsentUntil(ctx, "bucho@city.lg.jp"); !u.Equal(until) {
				t.Errorf("absent until %v, want %v", u, until)
			}
		}
		now = t0.Add(25 * time.Hour)
		if u, _ := s.AbsentUntil(ctx, "bucho@city.lg.jp"); !u.IsZero() {
			t.Errorf("still away after the end: %v", u)
		}
		now = t0
		s.SetAbsence(ctx, "bucho@city.lg.jp", time.Time{})
		if u, _ := s.AbsentUntil(ctx, "bucho@city.lg.jp"); !u.IsZero() {
			t.Errorf("back, but %v", u)
		}
	})
}

func TestNextExpiry(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if next, err := s.NextExpiry(ctx, "gw1"); err != nil || !next.IsZero() {
			t.Fatalf("none: %v %v", next, err)
		}
		for i, d := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
			r, _ := s.CreateRequest(ctx, Request{Kind: KindOutbound, Instance: "gw1", Item: "Q" + string(rune('a'+i)), Requester: "a@b",
				Policy: "hold", State: StatePending, Expires: t0.Add(d), OnExpiry: ExpirySend})
			if i == 1 {
				s.Decide(ctx, r.ID, true, "a@b", "")
			}
		}
		s.CreateRequest(ctx, Request{Kind: KindOutbound, Instance: "gw2", Item: "Qx", Requester: "a@b", Policy: "hold", State: StatePending,
			Expires: t0.Add(time.Minute), OnExpiry: ExpirySend})
		if next, err := s.NextExpiry(ctx, "gw1"); err != nil || !next.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("next %v %v, want the earliest pending of gw1", next, err)
		}
	})
}
