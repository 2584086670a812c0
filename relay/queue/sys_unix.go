//go:build unix

package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// lockSpool takes the spool's lock file (flock, released by the kernel if
// the process dies), waiting up to wait for another holder to let go.
func lockSpool(dir string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := tryLockSpool(dir)
		if !errors.Is(err, ErrLocked) || !time.Now().Before(deadline) {
			return f, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tryLockSpool takes the lock or returns an error wrapping ErrLocked at once.
func tryLockSpool(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, &StorageError{Op: "open", Path: path, Err: err}
	}
	safeio.ChownLikeParent(path)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid := strings.TrimSpace(string(b[:n])); pid != "" {
				return nil, fmt.Errorf("%w (pid %s)", ErrLocked, pid)
			}
			return nil, ErrLocked
		}
		return nil, &StorageError{Op: "lock", Path: path, Err: err}
	}
	// The pid is only for messages; the lock is the flock.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func unlockSpool(f *os.File) {
	if f != nil {
		f.Close() // closing the descriptor releases the flock
	}
}

// fsSpace returns the bytes available to an unprivileged writer and the
// size of the file system holding dir.
func fsSpace(dir string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}
