package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sekisho/sekisho/relay/auth"
)

func init() {
	register(&command{name: "passwd", summary: "make an SMTP AUTH secret ({SHA512-CRYPT} hash) for an account", run: runPasswd})
}

func runPasswd(env *cmdEnv, args []string) int {
	fs := newFlags(env, "passwd", "[--scheme SHA512-CRYPT|CRAM-MD5]", `
Prints a secret for accounts[].secret (or a secret file): the password
hashed as {SHA512-CRYPT} with a random salt, or as {CRAM-MD5} (the HMAC-MD5
key schedule, only for CRAM-MD5 clients). The password is read from the
terminal without echo, asked twice, or else as the first line of standard
input (echo secret | sekisho passwd). Exit 1 when the password is empty,
the two entries differ or the password cannot be carried by SMTP AUTH.`)
	scheme := fs.String("scheme", auth.SchemeSHA512Crypt, "the `scheme`: SHA512-CRYPT or CRAM-MD5")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "sekisho passwd: unexpected argument %q (the password is never an argument: it would stay in the shell history)\n", pos[0])
		return exitUsage
	}
	pw, err := readPassword(env)
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho passwd: %v\n", err)
		return exitFinding
	}
	h, err := auth.HashPassword(*scheme, pw)
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho passwd: %v\n", err)
		return exitFinding
	}
	fmt.Fprintln(env.stdout, h)
	return exitOK
}

// readPassword reads the password from the terminal (no echo, twice) when
// standard input is one, else the first line of standard input.
func readPassword(env *cmdEnv) (string, error) {
	if f, ok := env.stdin.(*os.File); ok {
		if first, err := readNoEcho(f, env.stderr, "Password: "); err == nil {
			again, err := readNoEcho(f, env.stderr, "Again: ")
			if err != nil {
				return "", err
			}
			if first != again {
				return "", errors.New("the two passwords differ")
			}
			return first, nil
		} else if !errors.Is(err, errNotTerminal) {
			return "", err
		}
	}
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("standard input: %v", err)
	}
	if err != nil && line == "" {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
