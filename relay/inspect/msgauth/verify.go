// Package msgauth owns the sender checks of the gateway: SPF, DKIM verification and DMARC folded into one Authentication-Results header (RFC 8601) under our authserv-id, and the connect-time DNS block/allow lists and reverse-DNS requirement.
package msgauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
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
	fromDomain, fromErr := headerFromDomain(m.Header)
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
		ar := &authres.DMARCResult{From: fromDomain}
		switch {
		case fromErr != nil:
			ar.Value, ar.Reason = authres.ResultPermError, reason(fromErr)
		default:
			ar.Value, res.DMARCPolicy, ar.Reason = v.dmarc(ctx, fromDomain, mailDomain, res)
		}
		res.DMARC = ar.Value
		results = append(results, ar)
		if v.cfg.DMARC == Reject && !res.Refuse {
			switch {
			case ar.Value == authres.ResultFail && res.DMARCPolicy == dmarc.PolicyReject:
				res.Refuse, res.Reply = true, smtpd.R(550, "5.7.1", "DMARC policy of "+fromDomain+" rejects this message")
			case ar.Value == authres.ResultTempError:
				res.Refuse, res.Reply = true, smtpd.R(451, "4.7.1", "DMARC policy of "+fromDomain+" could not be read, try again later")
			}
		}
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

// dmarc evaluates RFC 7489: the policy is looked up at the From domain,
// then at its organizational domain; DMARC passes when SPF or DKIM passed
// for a domain aligned with From.
func (v *Verifier) dmarc(ctx context.Context, from, mailDomain string, res Result) (authres.ResultValue, dmarc.Policy, string) {
	lookup := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return v.dns.LookupTXT(ctx, name) }}
	org := orgDomain(from)
	rec, err := dmarc.LookupWithOptions(from, lookup)
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		rec, err = dmarc.LookupWithOptions(org, lookup)
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return authres.ResultNone, "", ""
	case dmarc.IsTempFail(err):
		return authres.ResultTempError, "", reason(err)
	case err != nil:
		return authres.ResultPermError, "", reason(err)
	}
	policy := rec.Policy
	if sub && rec.SubdomainPolicy != "" {
		policy = rec.SubdomainPolicy
	}
	if res.SPF == spf.Pass && aligned(mailDomain, from, rec.SPFAlignment) {
		return authres.ResultPass, policy, ""
	}
	for _, d := range res.DKIM {
		if d.Err == nil && aligned(d.Domain, from, rec.DKIMAlignment) {
			return authres.ResultPass, policy, ""
		}
	}
	return authres.ResultFail, policy, "no aligned SPF or DKIM pass"
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

// headerFromDomain is the domain of the one From address (RFC 7489 6.6.1:
// a message with none or several has no DMARC identity).
func headerFromDomain(header []byte) (string, error) {
	froms := rewrite.HeaderFrom(header)
	if len(froms) != 1 {
		return "", fmt.Errorf("%d From fields", len(froms))
	}
	f := froms[0]
	switch {
	case f.Problem != "":
		return "", fmt.Errorf("header from: %s", f.Problem)
	case len(f.Mailboxes) != 1:
		return "", fmt.Errorf("header from holds %d addresses", len(f.Mailboxes))
	}
	switch a := f.Mailboxes[0]; {
	case a.Problem == "no domain":
		return "", errors.New("header from has no domain")
	case a.Problem != "":
		return "", fmt.Errorf("header from: %s", a.Problem)
	default:
		return domainOf(a.Address), nil
	}
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
