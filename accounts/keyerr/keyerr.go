// Package keyerr is the one way configuration problems are told apart and
// nested. Every section's Validate returns an errors.Join of errors whose
// text starts with the key path relative to the section
// ("routes[2].target: unknown scheme"); a section that holds another
// prefixes its keys, and the command prefixes the file and the section.
// It lives under accounts, the innermost package, so that every section
// can use it.
package keyerr

import (
	"errors"
	"fmt"
)

// Flatten lists the leaves of an errors.Join tree, in order; nil for nil.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Prefix puts prefix in front of every leaf of err ("milters[1]." before
// "name: ..."), keeping each leaf wrapped; nil for nil.
func Prefix(prefix string, err error) error {
	leaves := Flatten(err)
	if len(leaves) == 0 {
		return nil
	}
	out := make([]error, len(leaves))
	for i, e := range leaves {
		out[i] = fmt.Errorf("%s%w", prefix, e)
	}
	return errors.Join(out...)
}
