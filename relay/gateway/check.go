package gateway

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sekisho/sekisho/accounts/keyerr"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Finding is one problem or warning of a configuration check. Key is the
// configuration key path it is about ("" when it is about a file the
// configuration names); Text is the reason.
type Finding struct {
	Key  string
	Text string
}

func (f Finding) String() string {
	if f.Key == "" {
		return f.Text
	}
	return f.Key + ": " + f.Text
}

// findings turns a package's errors.Join of "key: reason" lines into
// findings under the section's key.
func findings(section string, err error) []Finding {
	var out []Finding
	for _, e := range keyerr.Flatten(err) {
		for _, line := range strings.Split(e.Error(), "\n") {
			if line == "" {
				continue
			}
			key, text, ok := strings.Cut(line, ": ")
			if !ok || strings.ContainsAny(key, " /\"") {
				out = append(out, Finding{Key: section, Text: line})
				continue
			}
			out = append(out, Finding{Key: section + "." + key, Text: text})
		}
	}
	return out
}

// CheckAll loads every section a configuration refers to on its own, so
// that one run finds every problem, and then looks for the mistakes that
// load fine but misroute or refuse mail (the warnings). Every reference
// between sections is checked as a start or a reload checks it
// (references). The parts named in skip (accounts, rewrite, routing,
// relay.guard, relay.inspect, relay.tls) already failed validation: they
// are not loaded again, so no problem is reported twice.
func CheckAll(sec Sections, skip map[string]bool) (problems, warnings []Finding) {
	var dir *accounts.Directory
	if !skip["accounts"] {
		var err error
		if dir, err = accounts.Open(sec.Accounts); err != nil {
			problems = append(problems, Finding{Text: err.Error()})
		}
	}
	var rw *rewrite.Rewriter
	if !skip["rewrite"] {
		var err error
		if rw, err = rewrite.New(sec.Rewrite); err != nil {
			problems = append(problems, findings("rewrite", err)...)
		}
	}
	var router *routing.Router
	if !skip["routing"] {
		var err error
		if router, err = routing.New(sec.Routing, SelfFor(sec.Relay)); err != nil {
			problems = append(problems, findings("routing", err)...)
		}
	}
	if skip["routing"] {
		rw = nil // a route's rewrite set is no reference of a section that failed
	}
	problems = append(problems, references(sec, rw, dir)...)
	var g *guard.Guard
	if !skip["relay.guard"] {
		var err error
		if g, err = guard.New(sec.Relay.Guard, func() *accounts.Directory { return dir }); err != nil {
			problems = append(problems, findings("relay.guard", err)...)
		}
	}
	if !skip["relay.inspect"] {
		// The DKIM keys are read here as at a start or a reload.
		if _, err := inspect.New(sec.Relay.Inspect, sec.Relay.Hostname, nil); err != nil {
			problems = append(problems, findings("relay.inspect", err)...)
		}
	}
	if !skip["relay.tls"] {
		e := &Engine{}
		if err := e.loadCert(sec.Relay.TLS); err != nil {
			problems = append(problems, Finding{"relay.tls", strings.TrimPrefix(err.Error(), "relay.tls: ")})
		}
	}
	return problems, loadedWarnings(sec, dir, router, g)
}

// loadedWarnings are the warnings of the parts that loaded (a nil one is
// skipped): config check prints them, serve logs them at start and after
// each reload (Engine.Warnings).
func loadedWarnings(sec Sections, dir *accounts.Directory, router *routing.Router, g *guard.Guard) []Finding {
	var warnings []Finding
	if dir != nil {
		warnings = append(warnings, secretWarnings(sec.Accounts, dir)...)
	}
	if g != nil {
		warnings = append(warnings, guardWarnings(sec.Relay.Guard)...)
	}
	if g != nil && router != nil && dir != nil {
		warnings = append(warnings, routeWarnings(sec, dir, router, g)...)
	}
	warnings = append(warnings, unlockWarnings(sec)...)
	if router != nil {
		warnings = append(warnings, archiveWarnings(sec, router)...)
	}
	if o, err := guard.NewOutbound(sec.Relay.Outbound); err == nil && dir != nil {
		warnings = append(warnings, outboundWarnings(sec, o, func(d string) bool { return dir.Domain(d) != nil })...)
	}
	return warnings
}

// Warnings are config check's warnings about the configuration in force
// (a ping-pong route, an unusable secret...).
func (e *Engine) Warnings() []Finding {
	st := e.st.Load()
	return loadedWarnings(st.sec, st.dir, st.router, st.guard)
}

// unlockWarnings: a password archive held for the console is opened
// through the store (its wrong passwords are counted there) and the
// console's page; without them it stays held until an administrator
// releases the original.
func unlockWarnings(sec Sections) []Finding {
	sc := sec.Relay.Sanitize
	if len(sc.Rules) == 0 || sc.Reconstruct.Encrypted != sanitize.ActionUnlock {
		return nil
	}
	var out []Finding
	if !sec.Relay.Store.On() {
		out = append(out, Finding{"relay.sanitize.reconstruct.encrypted", "unlock needs relay.store (the wrong passwords are counted there) and the console: without them a held archive can only be released whole by an administrator"})
	} else if sec.ConsoleURL == "" {
		out = append(out, Finding{"relay.sanitize.reconstruct.encrypted", "unlock: console.url is not set, so the notice cannot tell the recipient where to type the password"})
	}
	return out
}

// archiveWarnings: an archive copy of internet mail is the message as it
// came; sent by a route the sanitize rules do not cover, it carries the
// internet original past them (a dir: folder on the gateway stays here).
func archiveWarnings(sec Sections, router *routing.Router) []Finding {
	sc := sec.Relay.Sanitize
	if !sc.Selects(rewrite.SourceInternet, "") {
		return nil
	}
	var out []Finding
	for i, a := range sec.Relay.Archive {
		if a.Direction != "inbound" && a.Direction != "all" {
			continue
		}
		d, err := router.Match(a.Address, "")
		if err != nil || d.Kind == routing.KindDir || sc.Applies(rewrite.SourceInternet, "", d.Rule) {
			continue
		}
		out = append(out, Finding{fmt.Sprintf("relay.archive[%d].address", i), fmt.Sprintf(
			"the archive copy of internet mail to %s goes by %s, which no relay.sanitize rule covers: it carries the original, unsanitized; add the route to a rule, or archive into a dir: folder", a.Address, d.Label())})
	}
	return out
}

// secretWarnings: a secret that cannot be used fails only at AUTH time.
func secretWarnings(c accounts.Config, dir *accounts.Directory) []Finding {
	var out []Finding
	inline := map[string]bool{}
	for i, a := range c.Accounts {
		inline[strings.ToLower(a.Address)] = true
		if a.Secret == "" {
			continue
		}
		if err := auth.CheckSecret(a.Secret); err != nil {
			out = append(out, Finding{fmt.Sprintf("accounts.accounts[%d].secret", i), "unusable, SMTP AUTH as " + a.Address + " will fail: " + err.Error()})
		}
	}
	dir.Accounts(func(a *accounts.Account) bool {
		if a.Secret != "" && !inline[strings.ToLower(a.Address())] {
			if err := auth.CheckSecret(a.Secret); err != nil {
				out = append(out, Finding{"accounts.directory", "account " + a.Address() + ": unusable secret, SMTP AUTH will fail: " + err.Error()})
			}
		}
		return true
	})
	return out
}

// guardWarnings: a rule that matches every client from an inner network
// before any allow takes the inner server's trust away: its users are
// refused (553) as if they were on the internet.
func guardWarnings(c guard.Config) []Finding {
	var out []Finding
	for _, n := range c.InnerNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		for i, r := range c.Rules {
			if len(r.Senders) > 0 || len(r.Recipients) > 0 || len(r.Auth) > 0 || !coversPrefix(r.Networks, p) {
				continue
			}
			what := "takes away their trust: the inner server's users are refused as spoofed senders (553)"
			if r.Action == "deny" {
				what = "refuses the inner server's own mail (550)"
			}
			if r.Action != "allow" {
				out = append(out, Finding{fmt.Sprintf("relay.guard.rules[%d]", i), fmt.Sprintf(
					"%s matches every client of inner_networks %s before any allow and %s; add an allow rule for %s before it",
					r.Action, n, what, n)})
			}
			break
		}
	}
	return out
}

func coversPrefix(networks []string, p netip.Prefix) bool {
	if len(networks) == 0 {
		return true
	}
	for _, n := range networks {
		q, err := netip.ParsePrefix(n)
		if err != nil {
			if a, aerr := netip.ParseAddr(n); aerr == nil {
				q = netip.PrefixFrom(a, a.BitLen())
			} else {
				continue
			}
		}
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// routeWarnings: mail for a foreign domain sent to the inner server comes
// back (the seeds' ping-pong, which loops until the hop limit); a
// mirrored domain whose mail goes anywhere but the inner server, or that
// no route names.
func routeWarnings(sec Sections, dir *accounts.Directory, router *routing.Router, g *guard.Guard) []Finding {
	var out []Finding
	innerHop := func(d routing.Decision) string {
		for _, h := range d.Hops {
			for _, a := range h.Addrs {
				if g.Inner(a.Unmap()) {
					return h.String()
				}
			}
		}
		return ""
	}
	if len(sec.Routing.SmartHost.Targets) > 0 {
		if d, err := router.Match("postmaster@smart-host-check.invalid", ""); err == nil && d.Rule == "smart_host" {
			if h := innerHop(d); h != "" {
				out = append(out, Finding{"routing.smart_host.targets", "the smart host " + h +
					" is in relay.guard.inner_networks: mail for other domains goes to the inner server, which sends it back here (a loop until the hop limit)"})
			}
		}
	}
	for i, r := range sec.Routing.Routes {
		if r.Domain == "" || dir.IsOurDomain(strings.ToLower(r.Domain)) || strings.HasPrefix(r.Domain, "*") {
			continue
		}
		if d, err := router.Match("postmaster@"+r.Domain, ""); err == nil {
			if h := innerHop(d); h != "" {
				out = append(out, Finding{fmt.Sprintf("routing.routes[%d].targets", i), fmt.Sprintf(
					"%s sends mail for %s, not one of our domains, to %s in relay.guard.inner_networks: the inner server sends it back here (a loop)", r.Name, r.Domain, h)})
			}
		}
	}
	if sec.Relay.Postmaster == "" {
		pm := sec.Relay.PostmasterAddress()
		if d, err := router.Match(pm, ""); err == nil && !dir.IsOurDomain(pm[strings.LastIndexByte(pm, '@')+1:]) {
			out = append(out, Finding{"relay.postmaster", fmt.Sprintf(
				"not set: mail to postmaster@ our domains without such an account, and the From of our bounces, use %s, which goes to %s; set the administrator's mailbox", pm, d.Label())})
		}
	}
	for i, dc := range sec.Accounts.Domains {
		dom := dir.Domain(strings.ToLower(dc.Name))
		if dom == nil || dom.Twin != nil {
			// A twin's mail is addressed to the domain it shares
			// mailboxes with and takes that domain's route, which is
			// checked under that domain's name.
			continue
		}
		d, err := router.Match("postmaster@"+dom.Name, "")
		if err != nil {
			continue
		}
		key := fmt.Sprintf("accounts.domains[%d].name", i)
		switch {
		case d.Rule == "" || d.Rule == "smart_host":
			out = append(out, Finding{key, fmt.Sprintf("no route names %s: its mail goes to %s (add a route to the inner server)", dom.Name, d.Label())})
		case dom.Mode == accounts.ModeMirror && d.Kind == routing.KindHosts && innerHop(d) == "":
			out = append(out, Finding{key, fmt.Sprintf("mirrored domain %s is routed by %s to no host in relay.guard.inner_networks: the inner server's replies would be untrusted", dom.Name, d.Rule)})
		}
	}
	return out
}
