package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/export"
	"github.com/sekisho/sekisho/accounts/secretfile"
)

// Kinds of sync sources.
const (
	kindExport       = "export"        // TSV, CSV or address list of accounts and aliases
	kindAliases      = "aliases"       // E-Post epstman alias commands, aliimport.sh
	kindSender       = "sender"        // E-Post sender.dat of one account (inbox\USER\sender.dat)
	kindSenderGlobal = "sender-global" // E-Post's global sender.dat (EPOST\MS\sender.dat)
	kindLDAP         = "ldap"          // an LDAP / Active Directory search (ldap:// or ldaps:// URL)
)

var sourceKinds = []string{kindExport, kindAliases, kindSender, kindSenderGlobal, kindLDAP}

// syncSource is one --from, with the --kind given before it (if any).
type syncSource struct{ kind, path string }

// sourceFlags collects --from and --kind in order: a --kind applies to the
// --from that follows it.
type sourceFlags struct {
	list    []syncSource
	pending string
}

type fromFlag struct{ s *sourceFlags }
type kindFlag struct{ s *sourceFlags }

func (f fromFlag) String() string { return "" }
func (f fromFlag) Set(v string) error {
	f.s.list = append(f.s.list, syncSource{kind: f.s.pending, path: v})
	f.s.pending = ""
	return nil
}
func (f kindFlag) String() string { return "" }
func (f kindFlag) Set(v string) error {
	for _, k := range sourceKinds {
		if v == k {
			f.s.pending = v
			return nil
		}
	}
	return fmt.Errorf("unknown kind %q (want %s)", v, strings.Join(sourceKinds, ", "))
}

// detectKind tells a source's kind from its name, else its content: E-Post's
// sender.dat by name (in a folder named MS: the global one), usetime.dat
// refused by name, a file whose first command is epstman as alias
// commands, anything else as an export.
func detectKind(path string) (string, error) {
	if path == "-" {
		return kindExport, nil
	}
	if low := strings.ToLower(path); strings.HasPrefix(low, "ldap://") || strings.HasPrefix(low, "ldaps://") {
		return kindLDAP, nil
	}
	base := strings.ToLower(filepath.Base(path))
	switch base {
	case "sender.dat":
		if strings.EqualFold(filepath.Base(filepath.Dir(path)), "MS") {
			return kindSenderGlobal, nil
		}
		return kindSender, nil
	case "usetime.dat":
		return "", fmt.Errorf("%s: usetime.dat (per-user time windows) is not imported yet", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		first, _, _ := strings.Cut(line, " ")
		if strings.HasSuffix(first, "epstman") {
			return kindAliases, nil
		}
		if first != "cd" && first != "set" && first != "echo" {
			break
		}
	}
	return kindExport, nil
}

// merged is what every source of one sync says together.
type merged struct {
	records  []accounts.Record
	patches  []accounts.Patch
	errors   []lineErrorJSON
	accounts bool // some source carries accounts
	aliases  bool // some source carries aliases
	names    []string
	declared map[string]bool // accounts.domains, canonical
}

// readSources reads every source and merges them: records in source order,
// an entry defined by two sources refused with both places, the global
// sender.dat applied before the per-account ones.
func readSources(env *cmdEnv, cfg accounts.Config, srcs []syncSource, opt export.Options, lopt export.LDAPOptions) (*merged, error) {
	m := &merged{declared: map[string]bool{}}
	for _, dc := range cfg.Domains {
		if d, err := addr.Domain(dc.Name); err == nil {
			m.declared[d] = true
		}
	}
	mailboxes := accounts.MailboxDomains(cfg)
	fold := foldRule(cfg)
	first := map[string]string{}
	var global, perUser []accounts.Patch
	for _, src := range srcs {
		kind := src.kind
		if kind == "" {
			var err error
			if kind, err = detectKind(src.path); err != nil {
				return nil, err
			}
		}
		var res export.Result
		if kind == kindLDAP {
			lopt.URL = src.path
			res, err := export.ReadLDAP(context.Background(), lopt)
			if err != nil && !errors.Is(err, export.ErrInvalidLines) {
				return nil, err
			}
			m.names = append(m.names, src.path)
			m.accounts, m.aliases = true, m.aliases || res.Aliases
			m.add(res, src.path, first, mailboxes, fold)
			continue
		}
		in, name, closeFn, err := openSource(env, src.path)
		if err != nil {
			return nil, err
		}
		m.names = append(m.names, name)
		switch kind {
		case kindExport:
			res, err = export.Read(in, name, opt)
			m.accounts = m.accounts || res.Accounts || res.Format == export.FormatList
			m.aliases = m.aliases || res.Aliases
		case kindAliases:
			res, err = export.ReadAliasCommands(in, name, export.AliasCommandsOptions{Encoding: opt.Encoding})
			m.aliases = true
		case kindSender, kindSenderGlobal:
			local := ""
			if kind == kindSender {
				local = filepath.Base(filepath.Dir(src.path))
				if addr.CheckLocal(local) != nil || local == "." || local == string(filepath.Separator) {
					closeFn()
					return nil, fmt.Errorf("%s: a per-account sender.dat must sit in a folder named after its account (inbox/USER/sender.dat); use --kind sender-global for the global one", name)
				}
			}
			var sd export.SenderDat
			sd, err = export.ReadSenderDat(in, name, export.SenderDatOptions{Encoding: opt.Encoding, Local: local})
			res.Errors = sd.Errors
			if kind == kindSender {
				perUser = append(perUser, sd.Patches...)
			} else {
				global = append(global, sd.Patches...)
			}
		}
		closeFn()
		if err != nil && !errors.Is(err, export.ErrInvalidLines) {
			return nil, err
		}
		m.add(res, name, first, mailboxes, fold)
	}
	m.patches = append(global, perUser...)
	return m, nil
}

// add merges one source's records and errors; an entry that another
// source already defined is an error naming both places.
func (m *merged) add(res export.Result, name string, first map[string]string, mailboxes func(string) string, fold func(string) bool) {
	for _, le := range res.Errors {
		m.errors = append(m.errors, lineErrorJSON{File: name, Line: le.Line, Reason: le.Reason})
	}
	for _, r := range res.Records {
		var k string
		if d := recordDomain(&r); !m.declared[d] {
			m.errors = append(m.errors, lineErrorJSON{File: name, Line: r.Line, Reason: fmt.Sprintf("domain %s is not one of accounts.domains", d)})
			continue
		}
		if r.IsAlias() {
			k = "alias " + strings.ToLower(r.Alias)
		} else {
			d := mailboxes(r.Domain)
			k = "account " + addr.Key(r.Local, d, fold(d))
		}
		at := fmt.Sprintf("%s:%d", name, r.Line)
		if prev, dup := first[k]; dup {
			m.errors = append(m.errors, lineErrorJSON{File: name, Line: r.Line, Reason: fmt.Sprintf("%s is also defined at %s", k, prev)})
			continue
		}
		first[k] = at
		m.records = append(m.records, r)
	}
}

// recordDomain returns the domain an account or alias pattern is in.
func recordDomain(r *accounts.Record) string {
	if r.IsAlias() {
		_, d, _ := addr.Split(r.Alias)
		return d
	}
	return r.Domain
}

func openSource(env *cmdEnv, path string) (io.Reader, string, func(), error) {
	if path == "-" {
		return env.stdin, "stdin", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	return f, path, func() { f.Close() }, nil
}

// ldapFlags are the options of LDAP sources.
type ldapFlags struct {
	bindDN, passwordFile, mapping, caFile *string
	startTLS                              *bool
}

func addLDAPFlags(fs *flag.FlagSet) *ldapFlags {
	return &ldapFlags{
		bindDN:       fs.String("ldap-bind-dn", "", "bind as this `DN` before searching an LDAP source (default: anonymous)"),
		passwordFile: fs.String("ldap-password-file", "", "read the bind password from this `file` (one line, not readable by other users; else $LDAP_BIND_PASSWORD); never on the command line"),
		mapping: fs.String("ldap-map", "", "attributes read per column, e.g. `mail=mail,account=sAMAccountName,name=displayName,flags=userAccountControl,aliases=proxyAddresses` "+
			"(defaults: mail=mail, name=displayName,cn; - leaves one out)"),
		caFile:   fs.String("ldap-ca", "", "PEM `file` of the CA that signed the directory's certificate (ldaps:// or --ldap-starttls; default: the system's)"),
		startTLS: fs.Bool("ldap-starttls", false, "upgrade an ldap:// connection with StartTLS"),
	}
}

// options builds the LDAP options; the URL is set per source.
func (l *ldapFlags) options(opt export.Options) (export.LDAPOptions, error) {
	lo := export.LDAPOptions{BindDN: *l.bindDN, StartTLS: *l.startTLS, Domain: opt.Domain, Restrict: opt.Restrict,
		Mailboxes: opt.Mailboxes, FoldLocal: opt.FoldLocal}
	if *l.bindDN != "" {
		switch {
		case *l.passwordFile != "":
			pw, err := secretfile.Password(*l.passwordFile)
			if err != nil {
				return lo, fmt.Errorf("--ldap-password-file: %v", err)
			}
			lo.Password = pw
		default:
			// Not SEKISHO_*: those are configuration overrides.
			lo.Password = os.Getenv("LDAP_BIND_PASSWORD")
		}
		if lo.Password == "" {
			return lo, errors.New("--ldap-bind-dn needs a password: --ldap-password-file or $LDAP_BIND_PASSWORD")
		}
	}
	if *l.caFile != "" {
		t, err := secretfile.CATLS(*l.caFile)
		if err != nil {
			return lo, fmt.Errorf("--ldap-ca: %v", err)
		}
		lo.TLS = t
	}
	if *l.mapping != "" {
		for _, kv := range strings.Split(*l.mapping, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || v == "" {
				return lo, fmt.Errorf("--ldap-map: %q is not column=attribute", kv)
			}
			switch k {
			case "mail":
				lo.Map.Mail = v
			case "account":
				lo.Map.Account = v
			case "name":
				lo.Map.Name = v
			case "flags":
				lo.Map.Flags = v
			case "aliases":
				lo.Map.Aliases = v
			default:
				return lo, fmt.Errorf("--ldap-map: unknown column %q (mail, account, name, flags, aliases)", k)
			}
		}
	}
	return lo, nil
}
