package policy

import (
	"fmt"
	"strings"

	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/ratelimit"
)

// rateSubject is whom the rate limits count a connection's events under,
// or why none applies (exempt says so and name is empty).
type rateSubject struct {
	scope  ratelimit.Scope
	name   string
	exempt string
}

// rateSubject: an authenticated session counts under its user, any other
// under its client address (an IPv6 client by its /64); the inner
// networks (by default) and relay.rate_limits.exempt under nobody.
func (p *Policy) rateSubject(c Conn) rateSubject {
	switch {
	case c.Rates == nil:
		return rateSubject{exempt: "no rate limits are counted here"}
	case c.Rates.Limiter().Exempt(c.IP):
		return rateSubject{exempt: "the client is in relay.rate_limits.exempt"}
	case c.Rates.Limiter().Config().ExemptInner && p.p.Guard.Inner(c.IP.Unmap()):
		return rateSubject{exempt: "the client is in the inner networks (relay.rate_limits.exempt_inner)"}
	case c.AuthUser != "":
		return rateSubject{scope: ratelimit.User, name: c.AuthUser}
	}
	return rateSubject{scope: ratelimit.Client, name: ratelimit.ClientKey(c.IP)}
}

// Admit decides a new connection before the greeting, counting it: the
// client's connections per minute (relay.rate_limits.client). Over the
// limit the client is told 421 4.7.0 and the connection closed, as
// Postfix's anvil does.
func (p *Policy) Admit(c Conn) Decision {
	ok := guard.Verdict{Action: guard.Accept, Rule: "builtin:rate-limit"}
	c.AuthUser = "" // connections are the client address's, before any AUTH
	subj := p.rateSubject(c)
	if subj.exempt != "" {
		ok.Reason = "no connection rate limit: " + subj.exempt
		return decided("connect", c.IP.String(), ok, 220, "", "")
	}
	limit, within := c.Rates.Take(subj.scope, subj.name, ratelimit.Connections)
	if !within {
		return decided("connect", c.IP.String(), p.rateRefusal(421, "4.7.0", "Too many connections from your address",
			subj, ratelimit.Connections, limit), 0, "", "")
	}
	ok.Reason = "within the connection rate limit"
	return decided("connect", c.IP.String(), ok, 220, "", "")
}

// rateLimited counts one message (at MAIL) or recipient (at RCPT) of the
// connection's subject and refuses one over the limit with 450 4.7.1; at
// MAIL an authenticated user's session also takes one of the user's
// session slots (relay.rate_limits.user.sessions). over is false when
// the event is within every limit.
func (p *Policy) rateLimited(c Conn, stage, arg string, counter ratelimit.Counter) (d Decision, over bool) {
	subj := p.rateSubject(c)
	if subj.exempt != "" {
		return Decision{}, false
	}
	if counter == ratelimit.Messages && subj.scope == ratelimit.User {
		if limit, ok := c.Rates.Hold(subj.name); !ok {
			return decided(stage, arg, p.rateRefusal(450, "4.7.1", "Too many sessions of "+subj.name+" are sending",
				subj, ratelimit.Sessions, limit), 0, "", ""), true
		}
	}
	limit, ok := c.Rates.Take(subj.scope, subj.name, counter)
	if ok {
		return Decision{}, false
	}
	what := "Too much mail"
	if counter == ratelimit.Recipients {
		what = "Too many recipients"
	}
	who := " from your address"
	if subj.scope == ratelimit.User {
		who = " from " + subj.name
	}
	return decided(stage, arg, p.rateRefusal(450, "4.7.1", what+who, subj, counter, limit), 0, "", ""), true
}

// rateRefusal is the verdict over a limit: the rule names the key that
// set it, so the log and the metric say which limit was met.
func (p *Policy) rateRefusal(code int, enhanced, text string, subj rateSubject, counter ratelimit.Counter, limit int) guard.Verdict {
	key := rateKey(subj.scope, counter)
	per := " a minute"
	if counter == ratelimit.Sessions {
		per = " at once"
	}
	return refusal(code, enhanced, text+"; try again later", "rate:"+key,
		fmt.Sprintf("%d %s%s for %s %s reached (relay.rate_limits.%s)", limit, counter, per, subj.scope, subj.name, key))
}

func rateKey(scope ratelimit.Scope, counter ratelimit.Counter) string {
	if counter == ratelimit.Sessions {
		return string(scope) + ".sessions"
	}
	return string(scope) + "." + string(counter) + "_per_minute"
}

// RateLimits says which rate limits apply to a connection, for the dry
// runs: "client 192.0.2.7: 60 connections, 100 messages, 500 recipients
// a minute", or why none does.
func (p *Policy) RateLimits(c Conn) string {
	conn := c
	conn.AuthUser = ""
	cs := p.rateSubject(conn)
	if cs.exempt != "" {
		return "none, " + cs.exempt
	}
	cfg := c.Rates.Limiter().Config()
	var parts []string
	add := func(scope ratelimit.Scope, name string, counters ...ratelimit.Counter) {
		var per, once []string
		for _, k := range counters {
			n := cfg.Limit(scope, k)
			switch {
			case n <= 0:
			case k == ratelimit.Sessions:
				once = append(once, fmt.Sprintf("%d sessions sending at once", n))
			default:
				per = append(per, fmt.Sprintf("%d %s", n, k))
			}
		}
		s := string(scope) + " " + name + ": "
		switch {
		case len(per) == 0 && len(once) == 0:
			s += "no limit"
		case len(per) > 0:
			s += strings.Join(per, ", ") + " a minute"
			if len(once) > 0 {
				s += ", "
			}
		}
		parts = append(parts, s+strings.Join(once, ""))
	}
	if c.AuthUser == "" {
		add(ratelimit.Client, cs.name, ratelimit.Connections, ratelimit.Messages, ratelimit.Recipients)
	} else {
		add(ratelimit.Client, cs.name, ratelimit.Connections)
		add(ratelimit.User, c.AuthUser, ratelimit.Messages, ratelimit.Recipients, ratelimit.Sessions)
	}
	return strings.Join(parts, "; ")
}
