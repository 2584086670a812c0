package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
	} {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad driver", func(c *Config) { c.Driver = "mysql" }, `driver: "mysql" is not a driver`},
		{"postgres without dsn", func(c *Config) { c.Driver = DriverPostgres }, "dsn: required"},
		{"password in url", func(c *Config) { c.Driver, c.DSN = DriverPostgres, "postgres://u:pw@h/db" }, "dsn: holds a password"},
		{"password in kv", func(c *Config) { c.Driver, c.DSN = DriverPostgres, "host=h password=x" }, "dsn: holds a password"},
		{"kv ok", func(c *Config) { c.Driver, c.DSN = DriverPostgres, "host=h dbname=sekisho" }, ""},
		{"sqlite with dsn", func(c *Config) { c.Driver, c.DSN = DriverSQLite, "postgres://h/db" }, "dsn: is for the postgres driver"},
		{"sqlite without path", func(c *Config) { c.Driver, c.Path = DriverSQLite, "" }, "path: required"},
		{"small buffer", func(c *Config) { c.Buffer = 1 }, "buffer: must be 64 to 1048576 events, got 1"},
		{"huge buffer", func(c *Config) { c.Buffer = MaxBatch + 1 }, "buffer: must be 64 to 1048576 events, got 1048577"},
		{"retention", func(c *Config) { c.TraceRetention = time.Minute }, "trace_retention: must be at least 1h"},
		{"instance", func(c *Config) { c.Instance = "a b" }, "instance:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestMigrateTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	for range 2 {
		s, err := Open(context.Background(), Config{Path: path}, "gw")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestPostgresMigrateConcurrently(t *testing.T) {
	dsn := freshPostgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Config{Driver: DriverPostgres, DSN: dsn}, fmt.Sprintf("gw%d", i))
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestEvents(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		evs := []Event{
			{At: t0, Kind: "receive", QueueID: "Q1", Session: "s1", Client: "192.0.2.7", Sender: "Yamada@Example.COM",
				Rcpt: "tanaka@city.example.lg.jp", MessageID: "<m1@example.com>", Result: "accepted"},
			{At: t0.Add(time.Second), Kind: "send", QueueID: "Q1", Rcpt: "tanaka@city.example.lg.jp", Result: "delivered", Code: 250},
			{At: t0.Add(2 * time.Second), Kind: "reject", Session: "s2", Client: "198.51.100.9", Sender: "spam@example.net",
				Rcpt: "nobody@city.example.lg.jp", Result: "refused", Rule: "norelay", Code: 554},
			{At: t0.Add(3 * time.Second), Kind: "dsn", QueueID: "Q1", Ref: "Q2", Result: "queued"},
			{At: t0.Add(4 * time.Second), Kind: "send", QueueID: "Q9", Instance: "gw2", Rcpt: "x@y", Result: "delivered", Detail: strings.Repeat("x", 5000)},
		}
		if err := s.AddEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		got, err := s.SearchEvents(ctx, EventQuery{Sender: "<yamada@example.com>"})
		if err != nil || len(got) != 1 || got[0].QueueID != "Q1" || got[0].Instance != "gw1" || !got[0].At.Equal(t0) {
			t.Fatalf("by sender: %+v %v", got, err)
		}
		got, _ = s.SearchEvents(ctx, EventQuery{MessageID: "m1@example.com"})
		if len(got) != 1 {
			t.Errorf("by message-id without brackets: %+v", got)
		}
		got, _ = s.SearchEvents(ctx, EventQuery{QueueID: "Q2"})
		if len(got) != 1 || got[0].Kind != "dsn" {
			t.Errorf("by the DSN's queue ID: %+v", got)
		}
		got, _ = s.SearchEvents(ctx, EventQuery{Client: "198.51.100.9", Since: t0, Until: t0.Add(time.Hour)})
		if len(got) != 1 || got[0].Rule != "norelay" {
			t.Errorf("by client in a period: %+v", got)
		}
		got, _ = s.SearchEvents(ctx, EventQuery{Since: t0.Add(10 * time.Second)})
		if len(got) != 0 {
			t.Errorf("after the last: %+v", got)
		}
		got, _ = s.SearchEvents(ctx, EventQuery{QueueID: "Q9"})
		if len(got) != 1 || got[0].Instance != "gw2" || len(got[0].Detail) != maxField {
			t.Errorf("another instance, clipped detail: %d %+v", len(got), got)
		}
		all, err := s.MessageEvents(ctx, []string{"Q1"}, []string{"s2"})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range all {
			kinds = append(kinds, e.Kind)
		}
		if strings.Join(kinds, ",") != "receive,send,reject,dsn" {
			t.Errorf("message events in order: %v", kinds)
		}
		counts, err := s.CountEvents(ctx, t0)
		if err != nil || len(counts) != 4 {
			t.Errorf("counts %+v %v", counts, err)
		}
		rules, err := s.RefusalsByRule(ctx, t0, 10)
		if err != nil || len(rules) != 1 || rules[0].Rule != "norelay" || rules[0].Count != 1 {
			t.Errorf("refusals %+v %v", rules, err)
		}
		// Pending batches are pruned whole (pending_test.go); indexed
		// events one by one.
		if _, err := s.MergeEvents(ctx, 100); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneEvents(ctx, t0.Add(2500*time.Millisecond))
		if err != nil || n != 3 {
			t.Errorf("pruned %d %v", n, err)
		}
	})
}

func TestQuarantineIndex(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		it := QuarantineItem{ID: "20261129-0123456789", Stored: t0, Expires: t0.Add(14 * 24 * time.Hour),
			Sender: "yamada@example.com", Rcpts: []string{"Tanaka@city.example.lg.jp", "suzuki@city.example.lg.jp", "tanaka@city.example.lg.jp"},
			Subject: "<script>alert(1)</script>", Report: `{"removed":[]}`, Text: "本文", Size: 1234}
		if err := s.PutQuarantine(ctx, it); err != nil {
			t.Fatal(err)
		}
		if err := s.PutQuarantine(ctx, it); err != nil { // again: an upsert
			t.Fatal(err)
		}
		other := it
		other.ID, other.Instance, other.Rcpts = "20261129-aaaaaaaaaa", "gw2", []string{"suzuki@city.example.lg.jp"}
		if err := s.PutQuarantine(ctx, other); err != nil {
			t.Fatal(err)
		}
		mine, err := s.ListQuarantine(ctx, QuarantineQuery{Rcpt: "TANAKA@city.example.lg.jp"})
		if err != nil || len(mine) != 1 || mine[0].ID != it.ID || len(mine[0].Rcpts) != 2 || mine[0].Text != "" {
			t.Fatalf("tanaka's: %+v %v", mine, err)
		}
		if !mine[0].HasRcpt("tanaka@CITY.example.lg.jp") || mine[0].HasRcpt("sato@city.example.lg.jp") {
			t.Errorf("HasRcpt")
		}
		theirs, _ := s.ListQuarantine(ctx, QuarantineQuery{Rcpt: "suzuki@city.example.lg.jp"})
		if len(theirs) != 2 {
			t.Errorf("suzuki's: %+v", theirs)
		}
		full, err := s.QuarantineEntry(ctx, "gw1", it.ID)
		if err != nil || full.Text != "本文" || full.Subject != it.Subject {
			t.Errorf("entry: %+v %v", full, err)
		}
		if _, err := s.QuarantineEntry(ctx, "gw2", it.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another instance's ID: %v", err)
		}
		ids, _ := s.QuarantineIDs(ctx, "gw1")
		if len(ids) != 1 || !ids[it.ID] {
			t.Errorf("ids %v", ids)
		}
		if err := s.SetReleased(ctx, "gw1", it.ID, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteQuarantine(ctx, "gw1", it.ID); err != nil {
			t.Fatal(err)
		}
		if mine, _ := s.ListQuarantine(ctx, QuarantineQuery{Rcpt: "tanaka@city.example.lg.jp"}); len(mine) != 0 {
			t.Errorf("after delete: %+v", mine)
		}
		if n, _ := s.CountQuarantine(ctx); n != 1 {
			t.Errorf("count %d", n)
		}
	})
}

func TestRequestLifecycle(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.SetClock(func() time.Time { return t0 })
		r, err := s.CreateRequest(ctx, Request{Kind: KindRelease, Instance: "gw1", Item: "20261129-0123456789",
			Requester: "Tanaka@city.example.lg.jp", Recipients: []string{"tanaka@city.example.lg.jp"}, Reason: "見積書が必要です",
			Policy: "approval", State: StatePending})
		if err != nil || r.ID == 0 {
			t.Fatal(r, err)
		}
		if _, err := s.Start(ctx, r.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("starting a pending request: %v", err)
		}
		for q, want := range map[string]RequestQuery{"1 pending": {States: []string{StatePending}},
			"1 pending release": {Kind: KindRelease, States: []string{StatePending}}, "0 outbound": {Kind: KindOutbound}, "1 in all": {}} {
			if n, err := s.CountRequests(ctx, want); err != nil || strconv.Itoa(n) != strings.Fields(q)[0] {
				t.Errorf("CountRequests %s: %d %v", q, n, err)
			}
		}
		d, err := s.Decide(ctx, r.ID, true, "bucho@city.example.lg.jp", "ok")
		if err != nil || d.State != StateApproved || d.DecidedBy != "bucho@city.example.lg.jp" || !d.DecidedAt.Equal(t0) {
			t.Fatalf("decided %+v %v", d, err)
		}
		if _, err := s.Decide(ctx, r.ID, false, "other@city.example.lg.jp", ""); !errors.Is(err, ErrConflict) {
			t.Errorf("second decision: %v", err)
		}
		if _, err := s.Start(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(ctx, r.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("started twice: %v", err)
		}
		f, err := s.Finish(ctx, r.ID, true, "01JD00000000000000000000Q1")
		if err != nil || f.State != StateDone || f.Result == "" {
			t.Fatalf("finished %+v %v", f, err)
		}
		mine, _ := s.Requests(ctx, RequestQuery{Requester: "tanaka@city.example.lg.jp"})
		if len(mine) != 1 || mine[0].Reason != "見積書が必要です" || len(mine[0].Recipients) != 1 {
			t.Errorf("mine %+v", mine)
		}
		open, _ := s.Requests(ctx, RequestQuery{States: []string{StatePending, StateApproved}})
		if len(open) != 0 {
			t.Errorf("open %+v", open)
		}
		c, _ := s.CreateRequest(ctx, Request{Kind: KindRelease, Instance: "gw1", Item: "x", Requester: "a@b", Policy: "approval", State: StatePending})
		if got, err := s.Cancel(ctx, c.ID, "a@b"); err != nil || got.State != StateCancelled {
			t.Errorf("cancel %+v %v", got, err)
		}
		if _, err := s.Request(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing request: %v", err)
		}
		if n, err := s.PruneRequests(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
			t.Errorf("pruned %d %v", n, err)
		}
	})
}

func TestAuditAndSessions(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, a := range []string{"signin", "view-original", "approve"} {
			if err := s.AddAudit(ctx, AuditRecord{At: t0.Add(time.Duration(i) * time.Second), Actor: "Bucho@x", Action: a,
				Object: "20261129-0123456789", OK: i != 1}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Audit(ctx, AuditQuery{Object: "20261129-0123456789"})
		if err != nil || len(got) != 3 || got[0].Action != "approve" || got[1].OK || got[0].Actor != "bucho@x" {
			t.Fatalf("audit %+v %v", got, err)
		}
		if n, _ := s.PruneAudit(ctx, t0.Add(time.Second)); n != 1 {
			t.Errorf("pruned %d", n)
		}
		se := Session{ID: "h1", Principal: "Tanaka@x", Roles: []string{"staff", "approver"}, Method: "secret", CSRF: "c",
			Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		got2, err := s.Session(ctx, "h1")
		if err != nil || got2.Principal != "tanaka@x" || len(got2.Roles) != 2 || !got2.Expires.Equal(se.Expires) {
			t.Fatalf("session %+v %v", got2, err)
		}
		if err := s.TouchSession(ctx, "h1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.Sessions(ctx, t0); len(list) != 1 || !list[0].LastSeen.Equal(t0.Add(time.Minute)) {
			t.Errorf("sessions %+v", list)
		}
		if n, _ := s.RevokeSessions(ctx, "TANAKA@x"); n != 1 {
			t.Errorf("revoked %d", n)
		}
		if _, err := s.Session(ctx, "h1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked session: %v", err)
		}
		if err := s.PruneSessions(ctx, t0); err != nil {
			t.Fatal(err)
		}
		v1, err := s.Setting(ctx, "k", func() (string, error) { return "first", nil })
		v2, _ := s.Setting(ctx, "k", func() (string, error) { return "second", nil })
		if err != nil || v1 != "first" || v2 != "first" {
			t.Errorf("setting %q %q %v", v1, v2, err)
		}
	})
}

// story is the trace of a few messages: one sanitized, delivered and its
// original released; one bounced with a DSN; one session refused.
func story() []Event {
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	return []Event{
		{At: at(0), Kind: "receive", QueueID: "Q1", Session: "s1", Client: "192.0.2.7", Sender: "yamada@example.com", Rcpt: "tanaka@x", MessageID: "<m1@e>", Result: "accepted"},
		{At: at(1), Kind: "sanitize", QueueID: "Q1", Ref: "20261129-0123456789", Result: "sanitized"},
		{At: at(2), Kind: "send", QueueID: "Q1", Rcpt: "tanaka@x", Result: "delivered", Code: 250},
		{At: at(3), Kind: "release", QueueID: "Q3", Ref: "20261129-0123456789", Rcpt: "tanaka@x", Result: "released"},
		{At: at(4), Kind: "send", QueueID: "Q3", Rcpt: "tanaka@x", Result: "delivered", Code: 250},
		{At: at(5), Kind: "receive", QueueID: "Q2", Session: "s2", Client: "192.0.2.7", Sender: "yamada@example.com", Rcpt: "gone@x", Result: "accepted"},
		{At: at(6), Kind: "fail", QueueID: "Q2", Rcpt: "gone@x", Result: "failed", Code: 550},
		{At: at(7), Kind: "dsn", QueueID: "Q2", Ref: "Q4", Rcpt: "yamada@example.com", Result: "failed"},
		{At: at(8), Kind: "send", QueueID: "Q4", Rcpt: "yamada@example.com", Result: "delivered"},
		{At: at(9), Kind: "reject", Session: "s3", Client: "192.0.2.9", Sender: "yamada@example.com", Rcpt: "nobody@x", Result: "refused", Rule: "norelay"},
	}
}

func TestTraceSearchAndMessage(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		evs := story()
		if err := s.AddEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		msgs, err := s.TraceSearch(ctx, EventQuery{Sender: "yamada@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.QueueID+m.Session+":"+m.LastKind+"/"+m.LastResult)
		}
		if strings.Join(got, " ") != "s3:reject/refused Q2:dsn/failed Q1:send/delivered" {
			t.Errorf("search: %v", got)
		}
		one, _ := s.TraceMessage(ctx, "Q1")
		var kinds []string
		for _, e := range one {
			kinds = append(kinds, e.Kind+":"+e.QueueID)
		}
		if strings.Join(kinds, " ") != "receive:Q1 sanitize:Q1 send:Q1 release:Q3 send:Q3" {
			t.Errorf("Q1's story: %v", kinds)
		}
		two, _ := s.TraceMessage(ctx, "Q2")
		if len(two) != 4 || two[3].QueueID != "Q4" {
			t.Errorf("Q2's story with its DSN's delivery: %+v", two)
		}
		sess, _ := s.SessionEvents(ctx, "s3")
		if len(sess) != 1 || sess[0].Rule != "norelay" {
			t.Errorf("session: %+v", sess)
		}
	})
}

// TestSQLiteFilesPrivate: the database and the -wal and -shm files SQLite
// makes beside it are readable by their owner alone, whatever the umask.
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(context.Background(), Config{Path: path}, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddEvents(context.Background(), []Event{{At: time.Now(), Kind: "receive", QueueID: "Q1"}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s is %v, want -rw-------", filepath.Base(p), m)
		}
	}
}

// SecretKey makes a key once and gives the same after; a value that is
// no key says which row to delete.
func TestSecretKey(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a, err := s.SecretKey(ctx, "test.key", "tests")
		if err != nil || len(a) != 32 {
			t.Fatal(a, err)
		}
		if b, err := s.SecretKey(ctx, "test.key", "tests"); err != nil || !bytes.Equal(a, b) {
			t.Errorf("a second call gave another key: %x %v", b, err)
		}
		if _, err := s.Setting(ctx, "test.bad", func() (string, error) { return "short", nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SecretKey(ctx, "test.bad", "tests"); err == nil || !strings.Contains(err.Error(), "DELETE FROM settings WHERE name = 'test.bad'") {
			t.Errorf("err = %v", err)
		}
	})
}

// SQLite uses a partial index only for a query that repeats its condition
// word for word: the sender and recipient indexes' is entryKinds.
func TestEntryKindsMatchIndexes(t *testing.T) {
	for _, idx := range []string{"events_sender ON events (sender, at)", "events_rcpt ON events (rcpt, at)"} {
		if !strings.Contains(migrations[0], idx+" WHERE "+entryKinds+";") {
			t.Errorf("the index %s is not on %q", idx, entryKinds)
		}
	}
}
