package delivery

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const canSendFile = true

// sendMore writes p to the socket with MSG_MORE: the kernel holds it for
// the next write instead of sending a segment of its own.
func sendMore(nc net.Conn, p []byte) error {
	rc, err := rawConn(nc)
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			k, e := unix.SendmsgN(int(fd), p, nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			if k > 0 {
				p = p[k:]
			}
			switch {
			case e == unix.EAGAIN:
				return false // wait until the socket can take more
			case e == unix.EINTR:
			case e != nil:
				werr = os.NewSyscallError("sendmsg", e)
				return true
			}
		}
		return true
	})
	return errors.Join(werr, err)
}

// sendFile sends n bytes of f from off to the socket with sendfile(2). It
// reads the file at off without moving the file's own position, so a
// segment shared by other readers and the committer is left alone. A file
// shorter than off+n is an error: the message is cut short, and the
// caller abandons the transaction.
func sendFile(nc net.Conn, f *os.File, off, n int64) error {
	rc, err := rawConn(nc)
	if err != nil {
		return err
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	cerr := fc.Control(func(ffd uintptr) {
		err := rc.Write(func(sfd uintptr) bool {
			for n > 0 {
				k, e := unix.Sendfile(int(sfd), int(ffd), &off, int(min(n, 1<<30)))
				if k > 0 {
					n -= int64(k)
				}
				switch {
				case e == unix.EAGAIN:
					return false
				case e == unix.EINTR:
				case e == unix.EIO:
					werr = &storedError{fmt.Errorf("reading %s: %w", f.Name(), e)}
					return true
				case e != nil:
					werr = os.NewSyscallError("sendfile", e)
					return true
				case k == 0:
					werr = &storedError{fmt.Errorf("%s ends %d bytes before the message does", f.Name(), n)}
					return true
				}
			}
			return true
		})
		if werr == nil {
			werr = err
		}
	})
	return errors.Join(werr, cerr)
}

func rawConn(nc net.Conn) (syscall.RawConn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("sendfile: %T is not a socket", nc)
	}
	return sc.SyscallConn()
}
