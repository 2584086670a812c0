package conformance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 15: `sekisho trace` attaches to the running gateway without a
// restart and shows a live inbound session (after STARTTLS, with AUTH) and
// the outbound delivery it causes, with the AUTH secret and the body left
// out.
func TestTrace_LiveInboundAndOutboundSession(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	g := w.start(configC(""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	cmd := sekisho(ctx, "trace", "-c", g.cfg)
	cmd.Dir = w.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if t.Failed() {
			t.Logf("trace output:\n%s", out.String())
		}
	}()
	// The trace is attached once it shows a session.
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(out.String(), "RECV <- [QUIT") {
		if time.Now().After(deadline) {
			t.Fatalf("the trace showed no session within %v", waitTimeout)
		}
		if err := probe220(w.port("mx"), false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.dialogueFile(t, "trace-authenticated-submission", nil)
	internet := w.sinks["internet"].addr
	wants := []string{
		// inbound, inside TLS: the session's lines as the client sent them
		" RECV <- [STARTTLS",
		" RECV <- [AUTH PLAIN ****",
		" SEND -> [235 2.7.0",
		" RECV <- [MAIL FROM:<tanaka@test.jp>",
		" SEND -> [354 ",
		"---- (message body: ",
		" SEND -> [250 2.0.0 OK: queued as ",
		// outbound, to the smart host
		"out D",
		" " + internet + " SEND -> [MAIL FROM:<tanaka@test.jp>",
		" " + internet + " SEND -> [RCPT TO:<partner@example.org>",
		// The smart host offers CHUNKING: the message goes in one BDAT.
		" " + internet + " SEND -> [BDAT ",
		" " + internet + " RECV <- [250 2.0.0",
	}
	deadline = time.Now().Add(waitTimeout)
	for {
		got, missing := out.String(), ""
		for _, want := range wants {
			if !strings.Contains(got, want) {
				missing = want
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace lacks %q", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := out.String()
	for _, secret := range []string{"AHRhbmFrYUB0ZXN0LmpwAHRhbmFrYS1zZWNyZXQ=", "traced but never shown"} {
		if strings.Contains(got, secret) {
			t.Errorf("the trace shows %q (an AUTH secret or the body)", secret)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.Contains(l, " RECV <- [") && !strings.Contains(l, " SEND -> [") && !strings.Contains(l, " ---- ") {
			t.Errorf("trace line in no documented layout: %q", l)
		}
	}
	// Only the gateway's user may attach: the socket is mode 0600.
	if fi, err := os.Stat(filepath.Join(w.path("queue"), "trace.sock")); err != nil {
		t.Errorf("the trace socket is not at relay.queue.dir/trace.sock: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("trace socket mode %v, want 0600", fi.Mode().Perm())
	}
}
