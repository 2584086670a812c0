package gateway

import (
	"errors"
	"fmt"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// references checks every name one part of the configuration gives
// another, with full key paths: the rewrite set of each route and of the
// smart host, the routes sanitize rules name, the mailboxes of ours
// that relay.archive, relay.postmaster and the outbound rules' copies
// send to, and the store a held message's request needs. Each loads fine on its
// own and fails only on mail: a misspelt set makes every message of the
// route wait 451 and bounce after hours, an archive address that is no
// mailbox drops every copy. config check reports these and a reload or a
// start refuses them (buildState). rw and dir may be nil when they did
// not load: their references are then not checked.
func references(sec Sections, rw *rewrite.Rewriter, dir *accounts.Directory) []Finding {
	var out []Finding
	if rw != nil {
		set := func(key, name, route string) {
			if name == "" {
				return
			}
			if _, ok := rw.Set(name); !ok {
				out = append(out, Finding{key, fmt.Sprintf("%s names rewrite set %q, which rewrite.sets does not define", route, name)})
			}
		}
		for i, r := range sec.Routing.Routes {
			set(fmt.Sprintf("routing.routes[%d].rewrite", i), r.Rewrite, fmt.Sprintf("route %q", routeName(sec.Routing, i)))
		}
		set("routing.smart_host.rewrite", sec.Routing.SmartHost.Rewrite, "the smart host")
	}
	out = append(out, findings("relay.sanitize", sec.Relay.Sanitize.CheckRoutes(sec.Routing))...)
	out = append(out, findings("relay.sanitize", sec.Relay.Sanitize.CheckPrograms())...)
	if dir != nil {
		mailbox := func(key, a, what string) {
			res, err := dir.Lookup(a)
			if err == nil && res.Ours() && !res.Exists() {
				out = append(out, Finding{key, fmt.Sprintf("%s is in our domain %s but no account or alias of accounts: %s", a, res.Domain.Name, what)})
			}
		}
		for i, a := range sec.Relay.Archive {
			mailbox(fmt.Sprintf("relay.archive[%d].address", i), a.Address, "every archive copy would be refused by the inner server and dropped")
		}
		if sec.Relay.Postmaster != "" {
			mailbox("relay.postmaster", sec.Relay.Postmaster, "mail for postmaster would be refused")
		}
	}
	var lookup func(string) (bool, bool, string)
	if dir != nil {
		lookup = func(a string) (bool, bool, string) {
			res, err := dir.Lookup(a)
			if err != nil || !res.Ours() {
				return false, false, ""
			}
			return true, res.Exists(), res.Domain.Name
		}
	}
	return append(out, outboundReferences(sec, lookup)...)
}

// routeName is how routes are named in messages: routing.routes[].name,
// or routes[N] for an unnamed one (as relay.sanitize names them).
func routeName(c routing.Config, i int) string {
	if n := c.Routes[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("routes[%d]", i)
}

// referenceError is references as the error that refuses a start or a
// reload: one "key.path: reason" leaf each.
func referenceError(fs []Finding) error {
	errs := make([]error, len(fs))
	for i, f := range fs {
		errs[i] = errors.New(f.String())
	}
	return errors.Join(errs...)
}
