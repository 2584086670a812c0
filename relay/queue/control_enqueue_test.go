package queue

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnqueueControl: a message is queued through the running gateway's
// control folder, and directly when the spool is free; a silent gateway
// leaves nothing queued and the request withdrawn.
func TestEnqueueControl(t *testing.T) {
	cases := []struct {
		name    string
		running bool
	}{{"running gateway", true}, {"stopped gateway", false}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			q := openTest(t, cfg)
			if !tc.running {
				must(t, q.Close())
			}
			data := msgData(7, 300)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			id, err := EnqueueControl(ctx, cfg, testEnvelope("rel@x.jp"), data)
			must(t, err)
			if !tc.running {
				q = openTest(t, cfg)
			}
			m, err := q.Get(id)
			must(t, err)
			if m.Envelope.Rcpts[0].Addr != "rel@x.jp" || m.Envelope.Size != int64(len(data)) {
				t.Fatalf("queued envelope %+v", m.Envelope)
			}
			rc, err := q.Open(id)
			must(t, err)
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("queued bytes differ from the request")
			}
			if left, _ := os.ReadDir(filepath.Join(cfg.Dir, ctlDir)); len(left) != 0 {
				t.Errorf("control directory not cleaned: %v", left)
			}
		})
	}
}

func TestEnqueueControlRefused(t *testing.T) {
	cfg := testConfig(t.TempDir())
	must(t, prepareDir(cfg.Dir))
	if _, err := EnqueueControl(context.Background(), cfg, Envelope{From: "a@x.jp"}, []byte("x")); err == nil || !strings.Contains(err.Error(), "recipient") {
		t.Fatalf("no recipients: %v", err)
	}
	lock, err := tryLockSpool(cfg.Dir)
	must(t, err)
	defer unlockSpool(lock)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = EnqueueControl(ctx, cfg, testEnvelope("rel@x.jp"), []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.Contains(err.Error(), "withdrawn") {
		t.Fatalf("against a silent gateway: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(cfg.Dir, ctlDir)); len(left) != 0 {
		t.Errorf("request left behind: %v", left)
	}
}
