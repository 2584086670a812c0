package queue

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdatasync flushes a file's data and the metadata needed to read it back
// (its size), skipping timestamps: the cheapest durable append.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// maxIOV is the most buffers one writev takes (IOV_MAX).
const maxIOV = 1024

// writeBuffers writes bufs in order at f's position with writev(2): a
// batch of records is one system call, and the messages in it are not
// copied into one buffer first. It consumes bufs (the slices in it are
// advanced past what was written).
func writeBuffers(f *os.File, bufs [][]byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for bufs = skipEmpty(bufs); len(bufs) > 0; bufs = skipEmpty(bufs) {
			n, e := unix.Writev(int(fd), bufs[:min(len(bufs), maxIOV)])
			if e == unix.EINTR {
				continue
			}
			if e == nil && n <= 0 {
				e = io.ErrShortWrite
			}
			if e != nil {
				werr = &os.PathError{Op: "write", Path: f.Name(), Err: e}
				return true
			}
			total += n
			for n > 0 {
				k := min(n, len(bufs[0]))
				bufs[0], n = bufs[0][k:], n-k
				bufs = skipEmpty(bufs)
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return total, err
}

func skipEmpty(bufs [][]byte) [][]byte {
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}
