package accounts

import (
	"hash/maphash"
	"math/bits"
)

// accountIndex finds an account by local part and mailbox domain. It is an
// open-addressing table of account numbers, not a map of key strings: the
// key of an account is recomputed from the account itself when a slot is
// compared, so a million accounts cost 8 MiB of slots instead of ~60 MiB of
// key strings and map entries (the heap a loaded directory keeps is what a
// gateway pays for as long as it runs).
type accountIndex struct {
	seed  maphash.Seed
	slots []uint32 // account number + 1; 0 is empty
	mask  uint64
}

func newAccountIndex(capacity int) accountIndex {
	// At most half full, so that probe sequences stay short.
	n := 1 << bits.Len(uint(capacity*2))
	if n < 8 {
		n = 8
	}
	return accountIndex{seed: maphash.MakeSeed(), slots: make([]uint32, n), mask: uint64(n - 1)}
}

// hash hashes the local part (ASCII-folded when fold) and the domain
// ordinal, without building the key.
func (x *accountIndex) hash(local string, fold bool, dom uint16) uint64 {
	mix := (uint64(dom) + 1) * 0x9e3779b97f4a7c15
	if !fold || !hasUpper(local) {
		return maphash.String(x.seed, local) ^ mix // the common case: nothing to fold
	}
	var buf [128]byte
	var b []byte
	if len(local) <= len(buf) {
		b = buf[:len(local)]
	} else {
		b = make([]byte, len(local))
	}
	copy(b, local)
	if fold {
		for i, c := range b {
			if c >= 'A' && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
	}
	return maphash.Bytes(x.seed, b) ^ mix
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// find returns the number of the account with this local part in the
// mailbox domain mb.
func (d *Directory) findAccount(local string, mb *Domain) (uint32, bool) {
	x := &d.index
	if len(x.slots) == 0 {
		return 0, false
	}
	for i := x.hash(local, mb.FoldLocal, mb.ord) & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if a := &d.accounts[s-1]; a.mbox == mb.ord && sameLocal(a.Local, local, mb.FoldLocal) {
			return s - 1, true
		}
	}
}

// insertAccount indexes account n (already in d.accounts) and returns the
// number of an account it duplicates, if any (then n is not indexed).
func (d *Directory) insertAccount(n uint32, mb *Domain) (dup uint32, isDup bool) {
	x := &d.index
	a := &d.accounts[n]
	for i := x.hash(a.Local, mb.FoldLocal, mb.ord) & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			x.slots[i] = n + 1
			return 0, false
		}
		if b := &d.accounts[s-1]; b.mbox == mb.ord && sameLocal(b.Local, a.Local, mb.FoldLocal) {
			return s - 1, true
		}
	}
}

// sameLocal compares local parts, ASCII case-insensitively when fold (as
// addr.FoldLocal does).
func sameLocal(a, b string, fold bool) bool {
	if len(a) != len(b) {
		return false
	}
	if !fold {
		return a == b
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca >= 'A' && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if cb >= 'A' && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
