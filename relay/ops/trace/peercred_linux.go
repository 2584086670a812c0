//go:build linux

package trace

import (
	"net"
	"syscall"
)

// peerUID is the connecting process's user (SO_PEERCRED).
func peerUID(c *net.UnixConn) (int, bool, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, false, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, false, err
	}
	if cerr != nil {
		return -1, false, cerr
	}
	return int(cred.Uid), true, nil
}
