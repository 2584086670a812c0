package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/routing"
)

// RouteResult explains where mail for one address goes (route test,
// the console's route dry run; the JSON of route test --json).
type RouteResult struct {
	Address        string               `json:"address"`
	Sender         string               `json:"sender,omitempty"`
	Target         string               `json:"target,omitempty"`    // alias target
	Rewritten      string               `json:"rewritten,omitempty"` // after the receive-time rewrite
	Rule           string               `json:"rule"`
	Kind           routing.Kind         `json:"kind,omitempty"`
	Dir            string               `json:"dir,omitempty"`
	Hops           []routing.Hop        `json:"hops"`
	TLS            *routing.TLSPolicy   `json:"tls"`
	Auth           *RouteAuth           `json:"auth"`
	Rewrite        string               `json:"rewrite"`
	Received       routing.ReceivedMode `json:"received,omitempty"`
	MaxConnections int                  `json:"max_connections,omitempty"`
	Key            string               `json:"key,omitempty"`
	Reason         string               `json:"reason"`
	Error          string               `json:"error"`
	Code           int                  `json:"code,omitempty"`
	Enhanced       string               `json:"enhanced,omitempty"`
	Temporary      bool                 `json:"temporary,omitempty"`
}

// RouteAuth is a route's AUTH without its password.
type RouteAuth struct {
	Mechanism string `json:"mechanism"`
	Username  string `json:"username"`
}

// explainRoute routes one address; a failed lookup still shows the rule,
// the reason and the hops looked up.
func explainRoute(ctx context.Context, r *routing.Router, address, sender string, noDNS bool) RouteResult {
	res := RouteResult{Address: address, Sender: sender, Hops: []routing.Hop{}}
	var d routing.Decision
	var err error
	if noDNS {
		d, err = r.Match(address, sender)
	} else {
		d, err = r.Route(ctx, address, sender)
	}
	if d.Kind != "" {
		res.fill(d)
	}
	if err != nil {
		res.Error, res.Key = err.Error(), ""
		var re *routing.Error
		if errors.As(err, &re) {
			res.Code, res.Enhanced, res.Temporary = re.Code, re.Enhanced, re.Temporary
		}
	}
	return res
}

func (res *RouteResult) fill(d routing.Decision) {
	res.Rule, res.Kind, res.Dir = d.Rule, d.Kind, d.Dir
	res.TLS = nil
	if d.Kind != routing.KindDir {
		res.TLS = &d.TLS
	}
	res.Rewrite, res.Received, res.MaxConnections, res.Key, res.Reason = d.Rewrite, d.Received, d.MaxConnections, d.Key, d.Reason
	res.Hops = []routing.Hop{}
	for _, h := range d.Hops {
		if h.Addrs == nil {
			h.Addrs = []netip.Addr{}
		}
		res.Hops = append(res.Hops, h)
	}
	res.Auth = nil
	if d.Auth != nil {
		res.Auth = &RouteAuth{Mechanism: d.Auth.Mechanism, Username: d.Auth.Username}
	}
}

// ExplainRoute routes one address as written by a client, as the
// gateway routes what it queues: aliases resolved and the receive-time
// rewrite applied by the relay policy itself, for the client's source
// (client nil: the source mail for the address usually comes from).
// noDNS matches the table only.
func (r *DryRunner) ExplainRoute(ctx context.Context, address, sender string, client *netip.Addr, noDNS bool) RouteResult {
	a, err := policy.ParsePath(address)
	if err == nil && a == "" {
		err = fmt.Errorf("empty address")
	}
	s, serr := policy.ParsePath(sender)
	if err != nil || serr != nil {
		enhanced, msg := "5.1.3", fmt.Sprintf("bad recipient address %q: %v", address, err)
		if err == nil {
			enhanced, msg = "5.1.7", fmt.Sprintf("bad sender address %q: %v", sender, serr)
		}
		return RouteResult{Address: address, Sender: sender, Hops: []routing.Hop{}, Error: "501 " + enhanced + " " + msg, Code: 501, Enhanced: enhanced}
	}
	pol := r.st.pol
	src := pol.UsualSource(a)
	if client != nil {
		src = pol.Source(ProbeConn(r.cfg, Probe{Client: *client}))
	}
	res := pol.Resolve(src, s, a)
	// Routed as the runner routes the queued copy: with the sender as
	// received (each copy's sender is rewritten only as it goes out).
	out := explainRoute(ctx, r.st.runner.Router, res.Rewritten, s, noDNS)
	out.Address, out.Sender = address, sender
	if res.Target != a {
		out.Target = res.Target
	}
	if res.Rewritten != res.Target {
		out.Rewritten = res.Rewritten
	}
	return out
}
