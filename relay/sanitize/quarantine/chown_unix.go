//go:build unix

package quarantine

import (
	"os"
	"path/filepath"
	"syscall"
)

// chownLikeParent gives a file written by root (a `sekisho quarantine`
// command run by an administrator) to the owner of the folder, so the
// gateway, running as its own user, can still read the entry and the key:
// an unreadable entry would make a released copy look unreleased.
func chownLikeParent(path string) {
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
