// Package pgtest runs a real PostgreSQL server (Debian's postgresql
// package) on loopback for tests: a new cluster in a temporary folder,
// trust authentication for the loopback address, one database "sekisho".
// As root (CI) the server runs as the postgres user, since initdb refuses
// root.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir finds Debian's server programs (/usr/lib/postgresql/N/bin),
// the newest first, or the ones in PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNotInstalled
}

// ErrNotInstalled says that the server programs are missing: tests skip.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres and no initdb in PATH): apt-get install postgresql")

// Server is a running test server.
type Server struct {
	// DSN connects to its database "sekisho" as the user "sekisho".
	DSN string
	cmd *exec.Cmd
	dir string
	log *bytes.Buffer
	mu  sync.Mutex
}

// Start starts a server for the test and stops it at the end. It skips
// the test only when PostgreSQL is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New starts a server that the caller stops (several tests may share
// it, each in a database of its own: Fresh).
func New() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sekisho-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, log: &bytes.Buffer{}}
	cred, err := serverUser(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-A", "trust", "-U", "sekisho", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// fsync off: a test database need not survive a power cut, and the
	// machine is shared.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", port, "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=50", "-c", "shared_buffers=32MB")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	s.cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	s.cmd.Stdout, s.cmd.Stderr = s.logWriter(), s.logWriter()
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := "127.0.0.1:" + port
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("postgres did not listen on %s within a minute:\n%s", addr, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The server listens before it accepts logins; createdb retries.
	for {
		err := run("createdb", "-h", "127.0.0.1", "-p", port, "-U", "sekisho", "sekisho")
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "starting up") {
			s.Stop()
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.DSN = fmt.Sprintf("postgres://sekisho@127.0.0.1:%s/sekisho?sslmode=disable", port)
	return s, nil
}

// serverUser chowns dir to the postgres user when running as root, and
// returns the credential to run the server programs with (nil: the
// current user).
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres user to run the server as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	// The temporary folder's parents must let the postgres user through.
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("%s is not searchable by the postgres user; set TMPDIR to a folder that is", p)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, nil
}

type lockedWriter struct{ s *Server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.log.Len() > 1<<20 {
		return len(p), nil
	}
	return w.s.log.Write(p)
}

func (s *Server) logWriter() lockedWriter { return lockedWriter{s} }

// Log returns what the server wrote.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Stop stops the server (a fast shutdown) and removes its folder.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		s.cmd = nil
	}
	os.RemoveAll(s.dir)
}

// Fresh creates a new empty database on the server and returns its DSN,
// so that tests sharing one server do not see each other's records.
func (s *Server) Fresh(ctx context.Context, name string) (string, error) {
	bin, err := binDir()
	if err != nil {
		return "", err
	}
	u := strings.TrimPrefix(s.DSN, "postgres://sekisho@")
	hostPort, _, _ := strings.Cut(u, "/")
	host, port, _ := net.SplitHostPort(hostPort)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "createdb"), "-h", host, "-p", port, "-U", "sekisho", name)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("createdb %s: %v\n%s", name, err, out)
	}
	return fmt.Sprintf("postgres://sekisho@%s/%s?sslmode=disable", hostPort, name), nil
}
