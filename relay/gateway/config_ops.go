package gateway

import (
	"fmt"
	"net/netip"
	"strings"
)

// unlimitedKeys are the limits E-Post let an administrator set to
// "unlimited" (MailInMaxSize, RCPTMaximum, the accept limits): the
// configuration loader turns the word into 0, which the SMTP server and
// the listener read as no limit, and records the key in
// LimitsConfig.Unlimited. A 0 written as a number stays an error, so a
// typo never lifts a limit.
var unlimitedKeys = []string{"max_message_bytes", "max_recipients", "max_connections", "max_connections_per_ip"}

// UnlimitedKeys lists the relay.limits keys that accept "unlimited".
func UnlimitedKeys() []string { return append([]string(nil), unlimitedKeys...) }

func (l LimitsConfig) isUnlimited(key string) bool {
	for _, k := range l.Unlimited {
		if k == key {
			return true
		}
	}
	return false
}

// Warnings lists what is valid but risky, for `config check` and the start
// of serve.
func (c Config) Warnings() []string {
	var w []string
	for _, k := range c.Limits.Unlimited {
		w = append(w, fmt.Sprintf("limits.%s: unlimited, as E-Post allowed; one client can then use up %s", k, unlimitedRisk[k]))
	}
	return w
}

var unlimitedRisk = map[string]string{
	"max_message_bytes":      "the queue's disk with one message",
	"max_recipients":         "delivery with one message to thousands of recipients",
	"max_connections":        "file descriptors and memory",
	"max_connections_per_ip": "every connection slot",
}

// validateOps checks listener names and the rules that refer to them.
func (c Config) validateOps(bad func(key, format string, a ...any)) {
	names := map[string]int{}
	for i, l := range c.Listeners {
		if l.Name == "" {
			continue
		}
		if strings.ContainsAny(l.Name, " \t,") {
			bad(fmt.Sprintf("listeners[%d].name", i), "%q: no spaces or commas", l.Name)
		}
		if j, dup := names[l.Name]; dup {
			bad(fmt.Sprintf("listeners[%d].name", i), "%q is already the name of listeners[%d]", l.Name, j)
		}
		names[l.Name] = i
	}
	for _, ref := range c.Guard.ListenerRefs() {
		for j, n := range ref.Names {
			key := fmt.Sprintf("guard.rules[%d].listeners[%d]", ref.Rule, j)
			i, ok := names[n]
			if !ok {
				bad(key, "no listener is named %q (relay.listeners[].name)", n)
				continue
			}
			if ref.Alone && !boundToOneAddress(c.Listeners[i].Address) {
				bad(key, "an allow by listener alone needs the listener bound to one interface's address, not %q (or add networks to the rule)", c.Listeners[i].Address)
			}
		}
	}
}

// boundToOneAddress: the listener listens on one specific IP address, so
// its connections come in through one interface.
func boundToOneAddress(address string) bool {
	ap, err := netip.ParseAddrPort(address)
	return err == nil && !ap.Addr().IsUnspecified()
}
