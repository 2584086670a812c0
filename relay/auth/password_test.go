package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sekisho/sekisho/accounts"
)

func TestCheckPasswordSharesTheLockout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFailures = 3
	d := testDirectory(t)
	a := NewAuthenticator(cfg, func() *accounts.Directory { return d }, "gw")
	ip := netip.MustParseAddr("192.0.2.1")
	if got, err := a.CheckPassword(ip, "taro@"+dom, "taro-pw"); err != nil || got != "Taro@"+dom {
		t.Fatalf("right password: %q %v", got, err)
	}
	for i := range 3 {
		if _, err := a.CheckPassword(ip, "taro@"+dom, fmt.Sprint("wrong", i)); !errors.Is(err, ErrFailed) && !errors.Is(err, ErrLocked) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	if _, err := a.CheckPassword(ip, "taro@"+dom, "taro-pw"); !errors.Is(err, ErrLocked) {
		t.Fatalf("after 3 failures: %v, want locked", err)
	}
	// The SMTP side sees the same lock.
	if _, err := a.Server(MechPlain, ip, nil); err == nil {
		t.Errorf("SMTP AUTH from the locked client was offered")
	}
	a.now = func() time.Time { return time.Now().Add(cfg.LockoutTime + time.Minute) }
	if _, err := a.CheckPassword(ip, "taro@"+dom, "taro-pw"); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
}

func TestCheckExternal(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFailures = 2
	a := NewAuthenticator(cfg, func() *accounts.Directory { return nil }, "gw")
	ip := netip.MustParseAddr("192.0.2.2")
	bad := func() (string, error) { return "", fmt.Errorf("ldap bind: %w", ErrFailed) }
	for range 2 {
		if _, err := a.CheckExternal(ip, "uid=sato", bad); !errors.Is(err, ErrFailed) {
			t.Fatalf("failed bind: %v", err)
		}
	}
	ran := false
	if _, err := a.CheckExternal(ip, "uid=sato", func() (string, error) { ran = true; return "sato@x", nil }); !errors.Is(err, ErrLocked) || ran {
		t.Fatalf("locked: %v, check ran: %v", err, ran)
	}
	other := netip.MustParseAddr("198.51.100.1")
	if p, err := a.CheckExternal(other, "uid=ito", func() (string, error) { return "ito@x", nil }); err != nil || p != "ito@x" {
		t.Fatalf("another client and user: %q %v", p, err)
	}
	unavailable := errors.New("directory down")
	if _, err := a.CheckExternal(other, "uid=ito", func() (string, error) { return "", unavailable }); !errors.Is(err, unavailable) {
		t.Fatalf("an outage is not a failure: %v", err)
	}
}
