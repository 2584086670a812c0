package guard

// The outbound rules (E-Post's Mail Approval; 誤送信防止): what happens to
// mail our users send out, once it is accepted. They are ordered rules
// like the relay rules, with the relay rules' conditions (senders, time
// windows) and the ones only a whole message has (recipients inside or
// outside, an attachment, the size, the number of recipients); the first
// rule that matches decides. Their actions hold the message for a while,
// wait for an approver of a group, move outside addresses out of To/Cc,
// and add a supervisor's copy. relay/policy decides with them at DATA;
// the gateway carries the decision out.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
)

// OutboundConfig is the relay.outbound section.
type OutboundConfig struct {
	// InsideDomains count as inside besides our own (the accounts'
	// domains): "city.lg.jp", or "*.city.lg.jp" for its subdomains.
	InsideDomains []string `koanf:"inside_domains"`
	// Groups are the approval groups, and the sender groups rules name.
	Groups []GroupConfig `koanf:"groups"`
	// Rules are checked in order; the first that matches decides.
	Rules []OutboundRuleConfig `koanf:"rules"`
}

// GroupConfig is a named group of people.
type GroupConfig struct {
	Name string `koanf:"name"`
	// Members approve the group's requests; in a sender group, they are
	// the senders. Each is an address, a pattern (*@somu.city.lg.jp) or,
	// for approvers, "ldap-group:DN" (the members of a directory group,
	// known when they sign in to the console).
	Members []string `koanf:"members"`
	// Delegates may decide the group's requests too; the approval mail
	// goes to them when everyone it would go to is away.
	Delegates []string `koanf:"delegates"`
	// Notify are the addresses the approval mail goes to; default: the
	// members' plain addresses (a mailing list of an LDAP group goes
	// here).
	Notify []string `koanf:"notify"`
	// Timeout is how long a request waits for a decision (default 24h);
	// OnTimeout is what then happens: reject (default) or send.
	Timeout   time.Duration `koanf:"timeout"`
	OnTimeout string        `koanf:"on_timeout"`
}

// OutboundRuleConfig is one ordered outbound rule: every condition that
// is set must match; at least one action.
type OutboundRuleConfig struct {
	// Name appears in logs, notices and `relay test`; default "rules[N]".
	Name string `koanf:"name"`
	// Senders: envelope sender patterns as the relay rules write them
	// (user@d, prefix*@d, *@d, *@*.d); the sender as received or as
	// rewritten may match.
	Senders []string `koanf:"senders"`
	// SenderGroups: the sender is a member of one of these groups.
	SenderGroups []string `koanf:"sender_groups"`
	// Recipients: at least one envelope recipient matches a pattern.
	Recipients []string `koanf:"recipients"`
	// Destination: "outside" (at least one recipient outside) or
	// "inside" (every recipient inside); empty: either.
	Destination string `koanf:"destination"`
	// Attachment: true for messages with an attachment, false for
	// messages without.
	Attachment *bool `koanf:"attachment"`
	// MinMessageBytes: the message is at least this large.
	MinMessageBytes int64 `koanf:"min_message_bytes"`
	// MinRecipients: at least this many envelope recipients;
	// MinOutside: at least this many of them outside.
	MinRecipients int `koanf:"min_recipients"`
	MinOutside    int `koanf:"min_outside"`
	// Times: weekly windows in the gateway's local time, as the relay
	// rules write them ("Mon-Fri 08:30-17:15").
	Times []string `koanf:"times"`

	// Hold keeps the message this long; the sender may send it at once
	// or cancel it in the console meanwhile.
	Hold time.Duration `koanf:"hold"`
	// Approve names the group whose approver must approve the message.
	Approve string `koanf:"approve"`
	// BccOutside: when more than this many outside addresses stand in
	// To and Cc, they are taken out of the header (the envelope keeps
	// them): the recipients no longer see each other.
	BccOutside *int `koanf:"bcc_outside"`
	// CopyTo gets a copy of the message, as sent (a supervisor).
	CopyTo string `koanf:"copy_to"`
}

// Destinations.
const (
	DestInside  = "inside"
	DestOutside = "outside"
)

// Time-out actions.
const (
	OnTimeoutReject = "reject"
	OnTimeoutSend   = "send"
)

// DefaultApprovalTimeout is how long a request waits without a
// configured timeout.
const DefaultApprovalTimeout = 24 * time.Hour

// LDAPGroupPrefix marks a directory group among a group's members.
const LDAPGroupPrefix = "ldap-group:"

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports every problem; each message starts with its key path
// relative to the section.
func (c OutboundConfig) Validate() error {
	_, err := NewOutbound(c)
	return err
}

// Outbound applies one compiled OutboundConfig; build a new one on reload.
type Outbound struct {
	inside []addrPattern // *@domain patterns
	groups map[string]*Group
	order  []*Group // groups in configuration order
	rules  []outRule
	// content: some rule looks at the attachments or the size.
	content bool
}

type outRule struct {
	name       string
	senders    patternList
	groups     []*Group
	recipients patternList
	dest       string
	attachment *bool
	minBytes   int64
	minRcpts   int
	minOutside int
	times      windowList

	hold    time.Duration
	approve *Group
	bcc     int // -1: no BCC enforcement
	copyTo  string
}

// NewOutbound compiles c.
func NewOutbound(c OutboundConfig) (*Outbound, error) {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	o := &Outbound{groups: map[string]*Group{}}
	for i, d := range c.InsideDomains {
		p, err := compilePattern("*@" + d)
		if err != nil || strings.Contains(d, "@") {
			bad(fmt.Sprintf("inside_domains[%d]", i), "%q is not a domain (city.lg.jp, or *.city.lg.jp for its subdomains)", d)
			continue
		}
		o.inside = append(o.inside, p)
	}
	for i, gc := range c.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		g, e := compileGroup(key, gc)
		errs = append(errs, e...)
		if gc.Name == "" {
			continue
		}
		if _, dup := o.groups[gc.Name]; dup {
			bad(key+".name", "%q is already the name of another group", gc.Name)
			continue
		}
		o.groups[gc.Name] = g
		o.order = append(o.order, g)
	}
	names := map[string]int{}
	for i, rc := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		r, e := o.compileRule(key, rc)
		errs = append(errs, e...)
		if j, dup := names[r.name]; dup {
			bad(key+".name", "%q is already the name of rules[%d]", r.name, j)
		}
		names[r.name] = i
		o.rules = append(o.rules, r)
		if r.attachment != nil || r.minBytes > 0 {
			o.content = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

func (o *Outbound) compileRule(key string, rc OutboundRuleConfig) (outRule, []error) {
	var errs []error
	bad := func(k, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, a...)))
	}
	r := outRule{name: rc.Name, dest: rc.Destination, attachment: rc.Attachment, minBytes: rc.MinMessageBytes,
		minRcpts: rc.MinRecipients, minOutside: rc.MinOutside, hold: rc.Hold, bcc: -1}
	if r.name == "" {
		r.name = key
	} else if strings.HasPrefix(r.name, "builtin:") {
		bad("name", "%q: the prefix builtin: is reserved for the built-in checks", r.name)
	}
	var e []error
	r.senders, e = compilePatterns(key+".senders", rc.Senders)
	errs = append(errs, e...)
	r.recipients, e = compilePatterns(key+".recipients", rc.Recipients)
	errs = append(errs, e...)
	r.senders, r.recipients = r.senders.orAll(), r.recipients.orAll()
	for j, name := range rc.SenderGroups {
		g, ok := o.groups[name]
		switch {
		case !ok:
			bad(fmt.Sprintf("sender_groups[%d]", j), "%q is not a group in groups", name)
		case g.hasLDAP():
			bad(fmt.Sprintf("sender_groups[%d]", j), "group %q names an LDAP group: the gateway does not ask the directory while it receives mail; list the senders' addresses or patterns", name)
		default:
			r.groups = append(r.groups, g)
		}
	}
	switch rc.Destination {
	case "", DestInside, DestOutside:
	default:
		bad("destination", "%q is not inside or outside", rc.Destination)
	}
	for _, n := range []struct {
		k string
		v int64
	}{{"min_message_bytes", rc.MinMessageBytes}, {"min_recipients", int64(rc.MinRecipients)}, {"min_outside", int64(rc.MinOutside)}} {
		if n.v < 0 {
			bad(n.k, "must not be negative, got %d", n.v)
		}
	}
	for i, s := range rc.Times {
		w, err := parseWindow(s)
		if err != nil {
			bad(fmt.Sprintf("times[%d]", i), "%v", err)
			continue
		}
		r.times = append(r.times, w)
	}
	if rc.Hold < 0 || rc.Hold > 0 && rc.Hold < time.Second {
		bad("hold", "must be at least 1s, got %v", rc.Hold)
	}
	if rc.Approve != "" {
		g, ok := o.groups[rc.Approve]
		if !ok {
			bad("approve", "%q is not a group in groups", rc.Approve)
		}
		r.approve = g
		if rc.Hold > 0 {
			bad("hold", "hold and approve exclude each other: a message waiting for approval is held anyway, and its sender may cancel it meanwhile")
		}
	}
	if rc.BccOutside != nil {
		if *rc.BccOutside < 0 {
			bad("bcc_outside", "must not be negative, got %d", *rc.BccOutside)
		}
		r.bcc = *rc.BccOutside
	}
	if rc.CopyTo != "" {
		l, d, err := addr.Parse(rc.CopyTo)
		if err != nil {
			bad("copy_to", "%q is not an address: %v", rc.CopyTo, err)
		}
		r.copyTo = l + "@" + d
	}
	if rc.Hold == 0 && rc.Approve == "" && rc.BccOutside == nil && rc.CopyTo == "" {
		errs = append(errs, fmt.Errorf("%s: the rule has no action: give hold, approve, bcc_outside or copy_to", key))
	}
	return r, errs
}

// Group returns a group by name.
func (o *Outbound) Group(name string) (*Group, bool) {
	g, ok := o.groups[name]
	return g, ok
}

// Groups lists the groups in configuration order.
func (o *Outbound) Groups() []*Group { return o.order }

// NeedsContent reports whether some rule looks at the attachments or the
// size, which only the whole message shows.
func (o *Outbound) NeedsContent() bool { return o.content }

// Empty reports whether there are no rules.
func (o *Outbound) Empty() bool { return len(o.rules) == 0 }

// InsideDomain reports whether an address's domain is one of
// inside_domains (our own domains are the caller's to know).
func (o *Outbound) InsideDomain(address string) bool {
	e, err := parseAddr(address)
	if err != nil || e.null {
		return false
	}
	for _, p := range o.inside {
		if p.match(e) {
			return true
		}
	}
	return false
}

// OutboundMessage is what the outbound rules look at.
type OutboundMessage struct {
	// Senders are the envelope sender as received and as rewritten.
	Senders []string
	// Rcpts are the envelope recipients after the receive-time rewrite,
	// each inside or not.
	Rcpts []OutboundRcpt
	// Size is the message's size; Attachments the number of its
	// attachments. -1: not known (no message read), and a rule that
	// needs it does not match.
	Size        int64
	Attachments int
	At          time.Time
}

// OutboundRcpt is one recipient.
type OutboundRcpt struct {
	Addr   string
	Inside bool
}

// OutboundVerdict is the outbound rules' decision.
type OutboundVerdict struct {
	// Rule names the rule that matched; "" when none did.
	Rule string
	// Reason says what matched (or that nothing did).
	Reason string
	// Skipped names rules that could not be decided without the message
	// (a dry run without one).
	Skipped []string

	Hold    time.Duration
	Approve *Group
	// BccOutside is the number of outside addresses To and Cc may show;
	// -1: no enforcement.
	BccOutside int
	CopyTo     string
}

// Acts reports whether the verdict does anything.
func (v OutboundVerdict) Acts() bool {
	return v.Hold > 0 || v.Approve != nil || v.BccOutside >= 0 || v.CopyTo != ""
}

// Actions describes the actions, as `relay test` and the logs show
// them: "hold 5m0s", "approve somu", "bcc-outside 10", "copy-to a@b".
func (v OutboundVerdict) Actions() string {
	var a []string
	if v.Hold > 0 {
		a = append(a, "hold "+v.Hold.String())
	}
	if v.Approve != nil {
		a = append(a, fmt.Sprintf("approve %s (time-out %v: %s)", v.Approve.Name, v.Approve.Timeout, v.Approve.OnTimeout))
	}
	if v.BccOutside >= 0 {
		a = append(a, fmt.Sprintf("bcc-outside %d", v.BccOutside))
	}
	if v.CopyTo != "" {
		a = append(a, "copy-to "+v.CopyTo)
	}
	if len(a) == 0 {
		return "none"
	}
	return strings.Join(a, ", ")
}

// Match returns the decision of the first rule that matches m.
func (o *Outbound) Match(m OutboundMessage) OutboundVerdict {
	senders := make([]envAddr, 0, len(m.Senders))
	for _, s := range m.Senders {
		if e, err := parseAddr(s); err == nil {
			senders = append(senders, e)
		}
	}
	rcpts := make([]envAddr, 0, len(m.Rcpts))
	outside := 0
	for _, r := range m.Rcpts {
		if e, err := parseAddr(r.Addr); err == nil {
			rcpts = append(rcpts, e)
		}
		if !r.Inside {
			outside++
		}
	}
	at := m.At
	if at.IsZero() {
		at = time.Now()
	}
	v := OutboundVerdict{BccOutside: -1}
	for i := range o.rules {
		r := &o.rules[i]
		ok, unknown := r.match(senders, rcpts, m, outside, at)
		if unknown {
			v.Skipped = append(v.Skipped, r.name)
			continue
		}
		if !ok {
			continue
		}
		v.Rule, v.Hold, v.Approve, v.BccOutside, v.CopyTo = r.name, r.hold, r.approve, r.bcc, r.copyTo
		v.Reason = r.describe(len(m.Rcpts), outside)
		return v
	}
	v.Reason = "no outbound rule matches"
	return v
}

// match reports whether the rule matches; unknown: only the message
// itself (not given) could tell.
func (r *outRule) match(senders, rcpts []envAddr, m OutboundMessage, outside int, at time.Time) (ok, unknown bool) {
	if len(r.senders) > 0 && !anyMatch(r.senders, senders) {
		return false, false
	}
	if len(r.groups) > 0 {
		in := false
		for _, g := range r.groups {
			for _, p := range g.members {
				if p.dn == "" && anyMatch(patternList{p.pat}, senders) {
					in = true
				}
			}
		}
		if !in {
			return false, false
		}
	}
	if len(r.recipients) > 0 && !anyMatch(r.recipients, rcpts) {
		return false, false
	}
	switch {
	case r.dest == DestOutside && outside == 0, r.dest == DestInside && outside > 0:
		return false, false
	}
	if len(m.Rcpts) < r.minRcpts || outside < r.minOutside {
		return false, false
	}
	if !r.times.contains(at) {
		return false, false
	}
	if r.minBytes > 0 {
		if m.Size < 0 {
			return false, true
		}
		if m.Size < r.minBytes {
			return false, false
		}
	}
	if r.attachment != nil {
		if m.Attachments < 0 {
			return false, true
		}
		if (m.Attachments > 0) != *r.attachment {
			return false, false
		}
	}
	return true, false
}

func anyMatch(l patternList, es []envAddr) bool {
	for _, e := range es {
		if l.match(e) {
			return true
		}
	}
	return false
}

// describe says what the rule looked at, for logs and relay test.
func (r *outRule) describe(rcpts, outside int) string {
	var c []string
	if len(r.senders) > 0 || len(r.groups) > 0 {
		c = append(c, "the sender")
	}
	if len(r.recipients) > 0 {
		c = append(c, "a recipient")
	}
	if r.dest != "" || r.minOutside > 0 {
		c = append(c, fmt.Sprintf("%d of %d recipients outside", outside, rcpts))
	}
	if r.minRcpts > 0 {
		c = append(c, fmt.Sprintf("%d recipients (at least %d)", rcpts, r.minRcpts))
	}
	if r.attachment != nil {
		if *r.attachment {
			c = append(c, "an attachment")
		} else {
			c = append(c, "no attachment")
		}
	}
	if r.minBytes > 0 {
		c = append(c, fmt.Sprintf("at least %d bytes", r.minBytes))
	}
	if len(r.times) > 0 {
		c = append(c, "the time")
	}
	if len(c) == 0 {
		return "matches every message"
	}
	return "matches " + strings.Join(c, ", ")
}
