package milter

import (
	"crypto/tls"
	"strconv"
	"strings"

	gomilter "github.com/emersion/go-milter"
)

// stage is one step of the conversation before the header, with the
// macros sent ahead of it (the rcpt stage once per recipient).
type stage struct {
	code gomilter.Code
	kv   []string
	rcpt string
}

// macros are the Postfix macros a milter may read, stage by stage (the
// set docs/milters.md lists): rspamd and OpenDKIM read the client, the
// TLS session, the login and the envelope from them. addr is the
// client's address as sent in the connect step.
func (c *Client) macros(t Transaction, addr string) []stage {
	clientName := t.ClientName
	if clientName == "" {
		clientName = "unknown" // Postfix's word for a name not verified
	}
	conn := []string{"j", c.hostname, "{daemon_name}", "sekisho", "v", "sekisho",
		"_", clientName + " [" + addr + "]"}
	if addr != "" {
		conn = append(conn, "{client_addr}", addr, "{client_port}", strconv.Itoa(int(t.ClientPort)), "{client_name}", clientName)
	}
	out := []stage{{code: gomilter.CodeConn, kv: conn}}
	var helo []string
	if t.TLS != nil {
		helo = append(helo, "{tls_version}", tlsVersion(t.TLS.Version), "{cipher}", tls.CipherSuiteName(t.TLS.CipherSuite),
			"{cipher_bits}", strconv.Itoa(cipherBits(t.TLS.CipherSuite)))
	}
	out = append(out, stage{code: gomilter.CodeHelo, kv: helo})
	mail := []string{"{mail_addr}", t.From}
	if t.QueueID != "" {
		mail = append(mail, "i", t.QueueID)
	}
	if t.AuthUser != "" {
		mail = append(mail, "{auth_type}", t.AuthType, "{auth_authen}", t.AuthUser)
	}
	out = append(out, stage{code: gomilter.CodeMail, kv: mail})
	for _, r := range t.Rcpts {
		rcpt := []string{"{rcpt_addr}", r}
		if t.QueueID != "" {
			rcpt = append(rcpt, "i", t.QueueID)
		}
		out = append(out, stage{code: gomilter.CodeRcpt, kv: rcpt, rcpt: r})
	}
	return out
}

// tlsVersion names a TLS version as Postfix's {tls_version} does
// ("TLSv1.3").
func tlsVersion(v uint16) string {
	return strings.Replace(tls.VersionName(v), "TLS 1.", "TLSv1.", 1)
}

// cipherBits is the symmetric key size of a cipher suite, Postfix's
// {cipher_bits}.
func cipherBits(suite uint16) int {
	name := tls.CipherSuiteName(suite)
	switch {
	case strings.Contains(name, "AES_128"):
		return 128
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return 256
	case strings.Contains(name, "3DES"):
		return 168
	}
	return 0
}
