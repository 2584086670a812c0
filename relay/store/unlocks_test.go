package store

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestUnlockLimit: five attempts, however they race, then locked; a
// right password takes its attempt back; an administrator resets.
func TestUnlockLimit(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.UnlockTry(ctx, "gw1", "20260406-0123456789", "2", 5); err == nil {
					mu.Lock()
					allowed++
					mu.Unlock()
				} else if !errors.Is(err, ErrLocked) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if allowed != 5 {
			t.Errorf("%d attempts allowed, want 5", allowed)
		}
		if n, err := s.UnlockTry(ctx, "gw1", "20260406-0123456789", "2", 5); !errors.Is(err, ErrLocked) || n != 5 {
			t.Errorf("sixth: %d, %v", n, err)
		}
		if err := s.UnlockReset(ctx, "gw1", "20260406-0123456789", "2"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.UnlockTry(ctx, "gw1", "20260406-0123456789", "2", 5); err != nil || n != 1 {
			t.Errorf("after a reset: %d, %v", n, err)
		}
		if err := s.UnlockDone(ctx, "gw1", "20260406-0123456789", "2", true); err != nil {
			t.Fatal(err)
		}
		u, err := s.UnlockState(ctx, "gw1", "20260406-0123456789", "2")
		if err != nil || u.Failures != 0 || u.Opened.IsZero() {
			t.Errorf("after the right password: %+v, %v", u, err)
		}
		if u, _ := s.UnlockState(ctx, "gw1", "20260406-0123456789", "3"); u.Failures != 0 || !u.Opened.IsZero() {
			t.Errorf("another part: %+v", u)
		}
	})
}
