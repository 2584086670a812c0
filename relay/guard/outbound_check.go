package guard

import "fmt"

// OutboundLimits are the relay's limits a rule's conditions can exceed.
type OutboundLimits struct {
	MaxRecipients   int   // relay.limits.max_recipients; 0: unlimited
	MaxMessageBytes int64 // relay.limits.max_message_bytes; 0: unlimited
	// Ours reports whether a domain is one of ours (the accounts').
	Ours func(domain string) bool
}

// OutboundWarning is a finding about the outbound rules that loads fine
// but does nothing: a rule no message can match, a group nobody can
// decide for. Key is relative to the section.
type OutboundWarning struct {
	Key, Text string
}

// Warnings finds the rules that can never match and the approval groups
// with nobody in them (a directory group's members are the console's to
// count).
func (o *Outbound) Warnings(lim OutboundLimits) []OutboundWarning {
	var out []OutboundWarning
	warn := func(key, format string, a ...any) {
		out = append(out, OutboundWarning{key, fmt.Sprintf(format, a...)})
	}
	approving := map[*Group]bool{}
	shadow := ""
	for i := range o.rules {
		r := &o.rules[i]
		key := fmt.Sprintf("rules[%d]", i)
		if r.approve != nil {
			approving[r.approve] = true
		}
		if shadow != "" {
			warn(key, "never matches: %s before it matches every message", shadow)
			continue
		}
		if lim.MaxRecipients > 0 && r.minRcpts > lim.MaxRecipients {
			warn(key+".min_recipients", "never matches: %d is more than relay.limits.max_recipients (%d) lets a message have", r.minRcpts, lim.MaxRecipients)
		}
		if lim.MaxRecipients > 0 && r.minOutside > lim.MaxRecipients {
			warn(key+".min_outside", "never matches: %d is more than relay.limits.max_recipients (%d) lets a message have", r.minOutside, lim.MaxRecipients)
		}
		if lim.MaxMessageBytes > 0 && r.minBytes > lim.MaxMessageBytes {
			warn(key+".min_message_bytes", "never matches: %d is more than relay.limits.max_message_bytes (%d) lets a message have", r.minBytes, lim.MaxMessageBytes)
		}
		if r.dest == DestInside && r.minOutside > 0 {
			warn(key+".min_outside", "never matches: destination inside means no recipient is outside")
		}
		if r.dest == DestInside && len(r.recipients) > 0 && lim.Ours != nil && o.allOutside(r.recipients, lim.Ours) {
			warn(key+".recipients", "never matches: every pattern names a domain outside, and destination inside wants every recipient inside")
		}
		for _, g := range r.groups {
			if len(g.members) == 0 {
				warn(key+".sender_groups", "never matches: group %q has no member", g.Name)
			}
		}
		if r.matchesAll() {
			shadow = key
			if r.name != key {
				shadow = fmt.Sprintf("%s (%s)", key, r.name)
			}
		}
	}
	for i, g := range o.order {
		if !approving[g] {
			continue
		}
		if g.Empty() {
			warn(fmt.Sprintf("groups[%d]", i), "approval group %q has no member and no delegate: its requests can only time out (%s after %v)", g.Name, g.OnTimeout, g.Timeout)
		} else if len(g.Notify) == 0 && len(g.DelegateNotify) == 0 {
			warn(fmt.Sprintf("groups[%d].notify", i), "approval group %q names no plain address: nobody gets the approval mail (list a mailing list in notify)", g.Name)
		}
	}
	return out
}

// matchesAll reports whether the rule has no condition at all.
func (r *outRule) matchesAll() bool {
	return len(r.senders) == 0 && len(r.groups) == 0 && len(r.recipients) == 0 && r.dest == "" && r.attachment == nil &&
		r.minBytes == 0 && r.minRcpts == 0 && r.minOutside == 0 && len(r.times) == 0
}

// allOutside reports whether every pattern names one domain that is
// neither ours nor inside (a pattern for subdomains may hold an inside
// one, so it never counts).
func (o *Outbound) allOutside(l patternList, ours func(string) bool) bool {
	for _, p := range l {
		if p.null || p.subdomains || ours(p.domain) || o.InsideDomain("x@"+p.domain) {
			return false
		}
	}
	return true
}
