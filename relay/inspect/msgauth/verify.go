// Package msgauth owns the sender checks of the gateway: SPF, DKIM verification and DMARC folded into one Authentication-Results header (RFC 8601) under our authserv-id, and the connect-time DNS block/allow lists and reverse-DNS requirement.
package msgauth

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/sekisho/sekisho/relay/smtpd"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/sekisho/sekisho/rewrite"
)

// Verifier runs the checks of one Config. It is safe for concurrent use.
type Verifier struct {
	cfg Config
	dns Resolver
}

// New returns a verifier; hostname is the authserv-id when the
// configuration names none. r nil means NewResolver(cfg.DNSServers).
func New(cfg Config, hostname string, r Resolver) (*Verifier, error) {
	if cfg.AuthservID == "" {
		cfg.AuthservID = hostname
	}
	if r == nil {
		var err error
		if r, err = NewResolver(cfg.DNSServers); err != nil {
			return nil, err
		}
	}
	return &Verifier{cfg: cfg, dns: r}, nil
}

// Message is what the checks need of one received message.
type Message struct {
	ClientIP netip.Addr
	Helo     string
	MailFrom string // envelope sender, "" for the null sender
	// Header is the header block as received (CRLF line ends, with or
	// without the empty line that ends it); Body the rest, read once.
	Header []byte
	Body   io.Reader
}

// Result is the outcome of the message checks.
type Result struct {
	SPF   spf.Result           // "" when off
	DKIM  []*dkim.Verification // nil when off or unsigned
	DMARC authres.ResultValue  // "" when off
	// DMARCPolicy is the sender domain's published policy when DMARC
	// failed (none, quarantine, reject).
	DMARCPolicy dmarc.Policy
	// Header is the Authentication-Results field to add ("Name: value\r\n"),
	// "" when every check is off.
	Header string
	// Refuse is set when a check under the reject policy refuses the
	// message; Reply is then the answer.
	Refuse bool
	Reply  smtpd.Reply
}

// Enabled reports whether any message check is on; when none is, callers
// skip Verify and the body read it costs.
func (v *Verifier) Enabled() bool {
	return v.cfg.SPF != Off || v.cfg.DKIM != Off || v.cfg.DMARC != Off
}

// Verify runs SPF, DKIM and DMARC as configured. It reads m.Body once.
func (v *Verifier) Verify(ctx context.Context, m Message) Result {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	var res Result
	var results []authres.Result
	mailDomain := domainOf(m.MailFrom)
	if mailDomain == "" {
		mailDomain = m.Helo
	}
	if v.cfg.SPF != Off {
		r, err := spf.CheckHostWithSender(net.IP(m.ClientIP.Unmap().AsSlice()), m.Helo, m.MailFrom,
			spf.WithContext(ctx), spf.WithResolver(v.dns))
		res.SPF = r
		ar := &authres.SPFResult{Value: authres.ResultValue(r), Helo: m.Helo}
		if m.MailFrom != "" {
			ar.From = m.MailFrom
		}
		if err != nil && r != spf.Pass {
			ar.Reason = reason(err)
		}
		results = append(results, ar)
		if v.cfg.SPF == Reject && !res.Refuse {
			switch r {
			case spf.Fail:
				res.Refuse, res.Reply = true, smtpd.R(550, "5.7.23", fmt.Sprintf("SPF of %s does not permit %s to send its mail", mailDomain, m.ClientIP))
			case spf.TempError:
				res.Refuse, res.Reply = true, smtpd.R(451, "4.7.24", "SPF of "+mailDomain+" could not be checked, try again later")
			}
		}
	}
	if v.cfg.DKIM != Off {
		vs, err := dkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(headerBlock(m.Header)), m.Body), &dkim.VerifyOptions{
			LookupTXT:        func(name string) ([]string, error) { return v.dns.LookupTXT(ctx, name) },
			MaxVerifications: v.cfg.MaxSignatures,
		})
		res.DKIM = vs
		if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
			results = append(results, &authres.DKIMResult{Value: authres.ResultPermError, Reason: reason(err)})
		} else if len(vs) == 0 {
			results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
		}
		pass, temp := false, false
		for _, d := range vs {
			ar := &authres.DKIMResult{Value: authres.ResultPass, Domain: d.Domain, Identifier: d.Identifier}
			switch {
			case d.Err == nil:
				pass = true
			case dkim.IsTempFail(d.Err):
				ar.Value, ar.Reason, temp = authres.ResultTempError, reason(d.Err), true
			case dkim.IsPermFail(d.Err):
				ar.Value, ar.Reason = authres.ResultPermError, reason(d.Err)
			default:
				ar.Value, ar.Reason = authres.ResultFail, reason(d.Err)
			}
			results = append(results, ar)
		}
		// Unsigned mail is not refused: most of the internet's mail is
		// still unsigned, and DMARC is the check that says a domain signs.
		if v.cfg.DKIM == Reject && !res.Refuse && len(vs) > 0 && !pass {
			if temp {
				res.Refuse, res.Reply = true, smtpd.R(451, "4.7.5", "DKIM signature could not be checked, try again later")
			} else {
				res.Refuse, res.Reply = true, smtpd.R(550, "5.7.20", "No valid DKIM signature")
			}
		}
	}
	if v.cfg.DMARC != Off {
		results = v.verifyDMARC(ctx, m.Header, mailDomain, &res, results)
	}
	if len(results) > 0 {
		res.Header = formatHeader(v.cfg.AuthservID, results)
	}
	return res
}

// headerBlock is h ending in exactly one empty line: the body's own
// leading empty lines count in its DKIM hash, so none may be added.
func headerBlock(h []byte) []byte {
	if bytes.HasSuffix(h, []byte("\r\n\r\n")) || len(h) == 0 {
		return h
	}
	return append(h[:len(h):len(h)], '\r', '\n')
}

// formatHeader writes the Authentication-Results field with one result
// per folded line, which keeps long reasons under the line limit.
func formatHeader(id string, results []authres.Result) string {
	var b strings.Builder
	b.WriteString("Authentication-Results: " + id)
	for _, r := range results {
		// Format of no identity gives "; method=value params " with a
		// trailing space when there are no params.
		s := strings.TrimSpace(strings.TrimPrefix(authres.Format("", []authres.Result{r}), ";"))
		b.WriteString(";\r\n\t" + s)
	}
	b.WriteString("\r\n")
	return b.String()
}

// verifyDMARC evaluates DMARC for every author domain of the header's
// From fields (RFC 7489 §6.6.1: a message may name several, in several
// fields or one) and applies the strictest outcome: one domain's p=reject
// refuses the message whatever the others say. Each domain gets its own
// dmarc= result in the header.
func (v *Verifier) verifyDMARC(ctx context.Context, header []byte, mailDomain string, res *Result, results []authres.Result) []authres.Result {
	domains, err := authorDomains(header)
	if err != nil {
		res.DMARC = authres.ResultPermError
		return append(results, &authres.DMARCResult{Value: authres.ResultPermError, Reason: reason(err)})
	}
	var worst dmarcOutcome
	for i, from := range domains {
		o := v.dmarc(ctx, from, mailDomain, *res)
		results = append(results, &authres.DMARCResult{Value: o.value, Reason: o.reason, From: from})
		if i == 0 || o.strictness() > worst.strictness() {
			worst = o
		}
	}
	res.DMARC, res.DMARCPolicy = worst.value, worst.policy
	if v.cfg.DMARC == Reject && !res.Refuse {
		switch {
		case worst.value == authres.ResultFail && worst.policy == dmarc.PolicyReject:
			res.Refuse, res.Reply = true, smtpd.R(550, "5.7.1", "DMARC policy of "+worst.domain+" rejects this message")
		case worst.value == authres.ResultTempError:
			res.Refuse, res.Reply = true, smtpd.R(451, "4.7.1", "DMARC of "+worst.domain+" could not be evaluated ("+worst.reason+"), try again later")
		}
	}
	return results
}

// dmarcOutcome is DMARC's answer for one author domain.
type dmarcOutcome struct {
	domain string
	value  authres.ResultValue
	policy dmarc.Policy // the domain's policy when it failed
	reason string
}

// strictness orders outcomes by what they ask of us: a refusal first,
// then a deferral, then failures by their policy, then the rest.
func (o dmarcOutcome) strictness() int {
	switch o.value {
	case authres.ResultFail:
		switch o.policy {
		case dmarc.PolicyReject:
			return 6
		case dmarc.PolicyQuarantine:
			return 4
		}
		return 3
	case authres.ResultTempError:
		return 5
	case authres.ResultPermError:
		return 2
	case authres.ResultNone:
		return 1
	}
	return 0
}

// errSeveralRecords: RFC 7489 §6.6.3 ends policy discovery when a name
// publishes more than one DMARC record; DMARC is then not applied.
var errSeveralRecords = errors.New("several DMARC records")

// lookupDMARC reads the one DMARC record published at _dmarc.domain.
// TXT records that do not start with v=DMARC1 are not DMARC's.
func (v *Verifier) lookupDMARC(ctx context.Context, domain string) (*dmarc.Record, error) {
	txts, err := v.dns.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, dmarc.ErrNoPolicy
		}
		return nil, err
	}
	var recs []string
	for _, t := range txts {
		if rest, ok := strings.CutPrefix(t, "v=DMARC1"); ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t') {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return nil, dmarc.ErrNoPolicy
	case 1:
		return dmarc.Parse(recs[0])
	}
	return nil, errSeveralRecords
}

// dmarc evaluates RFC 7489 for one author domain: the policy is looked up
// at the From domain, then at its organizational domain; DMARC passes when
// SPF or DKIM passed for a domain aligned with From. When nothing aligned
// passed but an aligned check could not be made (SPF temperror, a DKIM
// key that could not be fetched), the result is temperror, not fail: the
// message may well pass when DNS answers again (RFC 7489 §6.6.2).
func (v *Verifier) dmarc(ctx context.Context, from, mailDomain string, res Result) dmarcOutcome {
	o := dmarcOutcome{domain: from}
	org := orgDomain(from)
	rec, err := v.lookupDMARC(ctx, from)
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		rec, err = v.lookupDMARC(ctx, org)
		sub = true
	}
	var de *net.DNSError
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		o.value = authres.ResultNone
		return o
	case errors.Is(err, errSeveralRecords):
		o.value, o.reason = authres.ResultNone, reason(err)
		return o
	case errors.As(err, &de) && !de.IsNotFound:
		o.value, o.reason = authres.ResultTempError, reason(err)
		return o
	case err != nil:
		o.value, o.reason = authres.ResultPermError, reason(err)
		return o
	}
	policy := rec.Policy
	if sub && rec.SubdomainPolicy != "" {
		policy = rec.SubdomainPolicy
	}
	spfAligned := aligned(mailDomain, from, rec.SPFAlignment)
	if res.SPF == spf.Pass && spfAligned {
		o.value, o.policy = authres.ResultPass, policy
		return o
	}
	var dkimTemp bool
	for _, d := range res.DKIM {
		if !aligned(d.Domain, from, rec.DKIMAlignment) {
			continue
		}
		if d.Err == nil {
			o.value, o.policy = authres.ResultPass, policy
			return o
		}
		dkimTemp = dkimTemp || dkim.IsTempFail(d.Err)
	}
	switch {
	case res.SPF == spf.TempError && spfAligned:
		o.value, o.reason = authres.ResultTempError, "aligned SPF could not be checked"
	case dkimTemp:
		o.value, o.reason = authres.ResultTempError, "aligned DKIM signature could not be checked"
	default:
		o.value, o.policy, o.reason = authres.ResultFail, policy, "no aligned SPF or DKIM pass"
	}
	return o
}

// aligned compares an authenticated domain with the From domain: equal
// under strict alignment, the same organizational domain under relaxed.
func aligned(d, from string, mode dmarc.AlignmentMode) bool {
	d, from = strings.ToLower(strings.TrimSuffix(d, ".")), strings.ToLower(from)
	if d == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && d != "" && orgDomain(d) == orgDomain(from)
}

// orgDomain is the registrable domain (public suffix plus one label).
func orgDomain(d string) string {
	o, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return o
}

// authorDomains are the distinct domains of every From address, in
// order. RFC 7489 §6.6.1 lets a receiver evaluate each author domain of a
// message with several From fields or addresses; an address that cannot
// be read names no domain, and only a header with no readable one at all
// has no DMARC identity (permerror).
func authorDomains(header []byte) ([]string, error) {
	froms := rewrite.HeaderFrom(header)
	if len(froms) == 0 {
		return nil, errors.New("no From field")
	}
	var out []string
	var problem error
	for _, f := range froms {
		if f.Problem != "" {
			problem = cmp.Or(problem, fmt.Errorf("header from: %s", f.Problem))
			continue
		}
		for _, a := range f.Mailboxes {
			switch {
			case a.Problem == rewrite.ProblemNoDomain:
				problem = cmp.Or(problem, errors.New("header from has no domain"))
			case a.Problem != "":
				problem = cmp.Or(problem, fmt.Errorf("header from: %s", a.Problem))
			default:
				if d := domainOf(a.Address); !slices.Contains(out, d) {
					out = append(out, d)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, cmp.Or(problem, errors.New("header from holds no address"))
	}
	return out, nil
}

func domainOf(a string) string {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(a[i+1:], "."))
}

// reason makes an error fit a reason= value: one line, no quotes.
func reason(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return strings.ReplaceAll(s, `"`, "'")
}
