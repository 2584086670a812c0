package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
)

func init() {
	register(&command{
		name:    "dkim keygen",
		summary: "make a DKIM signing key for a domain and print its DNS TXT record",
		run:     runDKIMKeygen,
	})
}

func runDKIMKeygen(env *cmdEnv, args []string) int {
	flags := newFlags(env, "dkim keygen", "DOMAIN [--selector NAME] [--out FILE] [--type rsa|ed25519] [--force]", `
Makes a new DKIM private key for DOMAIN, writes it (PKCS#8 PEM, mode 0600)
to FILE, and prints the DNS TXT record to publish at
SELECTOR._domainkey.DOMAIN, in zone file syntax. Add the key to
relay.inspect.dkim_sign.keys and reload (SIGHUP) once the record is
published. An existing FILE is never replaced without --force.`)
	selector := flags.String("selector", "sekisho", "DKIM `selector`")
	out := flags.String("out", "", "key `file` (default DOMAIN.SELECTOR.pem)")
	kind := flags.String("type", "rsa", "key `type`: rsa (2048 bits) or ed25519")
	force := flags.Bool("force", false, "replace an existing key file")
	pos, st := parseFlags(flags, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.stderr, "sekisho dkim keygen: give one DOMAIN")
		return exitUsage
	}
	domain := strings.ToLower(strings.TrimSuffix(pos[0], "."))
	if _, ok := dns.IsDomainName(domain); !ok || !strings.Contains(domain, ".") {
		fmt.Fprintf(env.stderr, "sekisho dkim keygen: %q is not a domain\n", pos[0])
		return exitUsage
	}
	if _, ok := dns.IsDomainName(*selector); !ok || *selector == "" || strings.ContainsAny(*selector, " ") {
		fmt.Fprintf(env.stderr, "sekisho dkim keygen: --selector %q is not a DNS label\n", *selector)
		return exitUsage
	}
	if *kind != "rsa" && *kind != "ed25519" {
		fmt.Fprintf(env.stderr, "sekisho dkim keygen: --type %q is neither rsa nor ed25519\n", *kind)
		return exitUsage
	}
	path := *out
	if path == "" {
		path = domain + "." + *selector + ".pem"
	}
	if _, err := os.Stat(path); err == nil && !*force {
		fmt.Fprintf(env.stderr, "%s: exists; not replaced (use --force)\n", path)
		return exitFinding
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(env.stderr, "%s: %v\n", path, err)
		return exitFinding
	}
	pemb, key, err := dkimsign.GenerateKey(*kind)
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho dkim keygen: %v\n", err)
		return exitFinding
	}
	txt, err := dkimsign.TXTRecord(key.Public())
	if err != nil {
		fmt.Fprintf(env.stderr, "sekisho dkim keygen: %v\n", err)
		return exitFinding
	}
	if err := safeio.WriteFile(path, pemb, 0o600); err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", path, err)
		return exitFinding
	}
	fmt.Fprintf(env.stderr, "wrote %s\n", path)
	fmt.Fprintf(env.stdout, "%s._domainkey.%s. IN TXT ( %s )\n", *selector, domain, chunks(txt))
	return exitOK
}

// chunks splits a TXT value into quoted strings of at most 255 bytes, the
// limit of one DNS character-string.
func chunks(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}
