//go:build unix

package safeio

import (
	"os"
	"path/filepath"
	"syscall"
)

// ChownLikeParent gives a file or folder created by root (a `sekisho queue`
// or `sekisho quarantine` command run by an administrator) to the owner of
// the folder it is in, so the gateway, running as its own user, can still
// read and remove it. It does nothing when not run as root, or when that
// folder belongs to root; a failure leaves the file as it was, to be
// reported by whoever cannot read it.
func ChownLikeParent(path string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid != 0 || st.Gid != 0) {
		os.Lchown(path, int(st.Uid), int(st.Gid))
	}
}
