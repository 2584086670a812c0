// Package secretfile reads the secrets and certificate authorities the
// configuration names by file: a password for a relay's AUTH or a
// directory's search account, and the CA that directory's certificate is
// checked against. One reader, so that every such file gets the same
// checks: a password file readable by every user is refused (it would
// leak the credential), and the password is one line.
//
// It lives under accounts, the innermost part of the module, so that
// routing, the console and the commands may all use it.
package secretfile

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"runtime"
)

// Password reads a password file: one line, its line end dropped, in a
// file no other user may read.
func Password(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("%s is readable by every user (mode %v); chmod o-r it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 || bytes.ContainsAny(b, "\r\n\x00") {
		return "", fmt.Errorf("%s must hold the password on one line", path)
	}
	return string(b), nil
}

// CATLS is a TLS configuration that trusts the PEM certificates of the
// file at path (TLS 1.2 at least).
func CATLS(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
