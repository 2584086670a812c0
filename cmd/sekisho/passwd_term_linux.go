package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

var errNotTerminal = errors.New("not a terminal")

// readNoEcho prompts on w and reads one line from the terminal f with
// echo off, restoring the terminal afterwards.
func readNoEcho(f *os.File, w io.Writer, prompt string) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errNotTerminal
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("terminal: %v", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(w, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("terminal: %v", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
