//go:build !linux

package main

import (
	"errors"
	"io"
	"os"
)

var errNotTerminal = errors.New("not a terminal")

// readNoEcho: only Linux terminals are read without echo; elsewhere the
// password comes from standard input.
func readNoEcho(*os.File, io.Writer, string) (string, error) { return "", errNotTerminal }
