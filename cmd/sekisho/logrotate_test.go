package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/relay/ops/logsink"
)

// TestLogrotateFile runs the real logrotate with packaging/sekisho.logrotate
// (paths moved into a temporary folder, the postrotate signal sent to this
// process) against a live log sink: every line lands either in the rotated
// file or in the new one, and lines after the SIGUSR1 in the new one.
func TestLogrotateFile(t *testing.T) {
	bin, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skip("logrotate is not installed")
	}
	src, err := os.ReadFile("../../packaging/sekisho.logrotate")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := string(src)
	conf = strings.ReplaceAll(conf, "/var/log/sekisho/", dir+"/")
	conf = strings.ReplaceAll(conf, "su sekisho sekisho", "")
	conf = strings.ReplaceAll(conf, "systemctl kill -s USR1 --kill-whom=main sekisho.service", fmt.Sprintf("kill -USR1 %d", os.Getpid()))
	if strings.Contains(conf, "systemctl") || !strings.Contains(conf, "kill -USR1") {
		t.Fatalf("the postrotate line changed; update this test:\n%s", conf)
	}
	confPath := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	sink, err := logsink.New(logsink.Options{File: filepath.Join(dir, "sekisho.log"), Format: "text", Level: "info",
		Outputs: []logsink.Output{{Kinds: []string{"send"}, File: filepath.Join(dir, "senderlog")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	log := slog.New(sink.Handler())
	log.Info("before", "kind", "start")
	log.Info("delivery", "kind", "send", "id", "before")

	out, err := exec.Command(bin, "-f", "-s", filepath.Join(dir, "state"), confPath).CombinedOutput()
	if err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	select {
	case <-usr1:
	case <-time.After(10 * time.Second):
		t.Fatal("logrotate sent no SIGUSR1")
	}
	if err := sink.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("after", "kind", "start")
	log.Info("delivery", "kind", "send", "id", "after")

	for _, name := range []string{"sekisho.log", "senderlog"} {
		rotated, _ := filepath.Glob(filepath.Join(dir, name+"-*"))
		if len(rotated) != 1 {
			t.Fatalf("%s: rotated files %v", name, rotated)
		}
		old, _ := os.ReadFile(rotated[0])
		cur, _ := os.ReadFile(filepath.Join(dir, name))
		if !strings.Contains(string(old), "before") || strings.Contains(string(old), "after") {
			t.Errorf("%s: %q", rotated[0], old)
		}
		if !strings.Contains(string(cur), "after") || strings.Contains(string(cur), "before") {
			t.Errorf("%s: %q", name, cur)
		}
	}
}
