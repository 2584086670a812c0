package routing

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Kind says what kind of next hop a decision names.
type Kind string

const (
	KindHosts Kind = "hosts" // configured hosts, tried in order
	KindMX    Kind = "mx"    // the recipient domain's MX hosts
	KindDir   Kind = "dir"   // a local directory, one file per message
)

// TLSMode is the TLS policy towards a next hop.
type TLSMode string

const (
	TLSNone          TLSMode = "none"          // never STARTTLS
	TLSOpportunistic TLSMode = "opportunistic" // STARTTLS when offered, certificate not verified
	TLSRequired      TLSMode = "required"      // STARTTLS with a verified certificate, or no delivery
)

// ReceivedMode is what a route's copy keeps of the Received fields written
// inside the inner networks (the relay does the masking).
type ReceivedMode string

const (
	ReceivedKeep        ReceivedMode = "keep"         // every Received field as queued
	ReceivedMaskInner   ReceivedMode = "mask-inner"   // inner addresses and their names replaced
	ReceivedRemoveInner ReceivedMode = "remove-inner" // the fields added inside removed, the rest masked
)

// TLSPolicy is how to protect the connection to a next hop.
type TLSPolicy struct {
	Mode TLSMode `json:"mode"`
	// CAFile verifies the certificate instead of the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// ServerName is the name expected in the certificate; empty means the
	// hop's Host.
	ServerName string `json:"server_name,omitempty"`
}

// Auth is the login to a next hop. Its password never appears in fmt,
// slog or JSON output.
type Auth struct {
	Mechanism string `json:"mechanism"` // "PLAIN" or "LOGIN"
	Username  string `json:"username"`
	Password  string `json:"-"`
	// AllowPlaintext: AUTH may be sent without TLS.
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
}

// String describes the login without its password.
func (a Auth) String() string {
	return fmt.Sprintf("%s as %s (password redacted)", a.Mechanism, strconv.Quote(a.Username))
}

// Format makes every fmt verb, %#v and %+v included, print String.
func (a Auth) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue keeps the password out of structured logs.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", a.Mechanism), slog.String("username", a.Username))
}

// Hop is one next hop. Delivery tries a decision's hops in slice order,
// and each hop's addresses in order.
type Hop struct {
	Host  string       `json:"host"`
	Port  int          `json:"port"`
	Addrs []netip.Addr `json:"addrs"`
	// Pref is the MX preference (0 for configured hosts).
	Pref int `json:"pref"`
	// Error says why Addrs is empty, when it is.
	Error string `json:"error,omitempty"`
}

func (h Hop) String() string {
	host := h.Host
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(h.Port)
}

// Decision is where mail for one recipient goes, and why.
type Decision struct {
	// Rule is the matching route's name ("routes[N]" when unnamed),
	// "smart_host", or "" when no rule matched and the mail goes by MX.
	Rule string `json:"rule"`
	Kind Kind   `json:"kind"`
	// Dir is the directory of a KindDir decision.
	Dir  string    `json:"dir,omitempty"`
	Hops []Hop     `json:"hops"`
	TLS  TLSPolicy `json:"tls"`
	// Auth is nil when the next hop gets no AUTH.
	Auth           *Auth `json:"auth,omitempty"`
	MaxConnections int   `json:"max_connections,omitempty"`
	// Rewrite names the rewrite set to apply at delivery time; "" for none.
	Rewrite string `json:"rewrite,omitempty"`
	// Received is what the copy keeps of the inner Received fields.
	Received ReceivedMode `json:"received"`
	// Reason explains the decision in one line, for people.
	Reason string `json:"reason"`
	// Key is equal for recipients that may share a connection and a
	// transaction: same hops, TLS policy, login, rewrite, Received policy
	// and limit.
	Key string `json:"key"`
}

// computeKey fills Key. MX hops are listed by preference then name, so
// the shuffle of equal preferences does not change the key.
func (d *Decision) computeKey(domain string) {
	var b strings.Builder
	b.WriteString(string(d.Kind))
	switch {
	case d.Kind == KindDir:
		b.WriteString(" " + d.Dir)
		d.Key = b.String()
		return
	case d.Kind == KindMX && len(d.Hops) == 0:
		b.WriteString(" " + domain) // not looked up yet
	}
	hops := make([]string, len(d.Hops))
	for i, h := range d.Hops {
		hops[i] = h.String()
		if d.Kind == KindMX {
			hops[i] = fmt.Sprintf("%05d/%s", h.Pref, h.String())
		}
	}
	if d.Kind == KindMX {
		slices.Sort(hops)
	}
	b.WriteString(" " + strings.Join(hops, ","))
	fmt.Fprintf(&b, " tls=%s", d.TLS.Mode)
	if d.TLS.CAFile != "" || d.TLS.ServerName != "" {
		fmt.Fprintf(&b, "(%s,%s)", d.TLS.CAFile, d.TLS.ServerName)
	}
	if d.Auth != nil {
		fmt.Fprintf(&b, " auth=%s:%s", d.Auth.Mechanism, d.Auth.Username)
	}
	if d.Rewrite != "" {
		b.WriteString(" rewrite=" + d.Rewrite)
	}
	if d.Received != ReceivedKeep && d.Received != "" {
		b.WriteString(" received=" + string(d.Received))
	}
	if d.MaxConnections > 0 {
		fmt.Fprintf(&b, " max=%d", d.MaxConnections)
	}
	d.Key = b.String()
}

// Label names the decision's route in one word, as logs, metrics and the
// sanitize rules name it: the route's name ("routes[N]" when unnamed),
// "smart_host", or "mx" when no rule matched.
func (d Decision) Label() string {
	if d.Rule != "" {
		return d.Rule
	}
	return "mx"
}

// Summary names the decision in one line: its label and the configured
// hosts (or folder), as the delivery log and the dry runs show the next
// hop.
func (d Decision) Summary() string {
	label := d.Label()
	if d.Kind == KindDir {
		return label + " dir " + d.Dir
	}
	if len(d.Hops) == 0 {
		return label
	}
	hops := make([]string, len(d.Hops))
	for i, h := range d.Hops {
		hops[i] = h.String()
	}
	return label + " " + strings.Join(hops, ",")
}
