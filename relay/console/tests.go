package console

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/rewrite"
)

// The dry runs as forms, on the running configuration: the same functions
// `sekisho relay test`, `route test`, `rewrite test --message` and
// `accounts check` call. Nothing is sent or queued.

func (s *Server) tests(w http.ResponseWriter, r *http.Request, u *user) {
	s.render(w, r, u, http.StatusOK, "tests", map[string]any{"Form": map[string]string{"helo": "client.example", "listener": "mx", "source": "internet"}})
}

// lines splits a textarea into its non-empty lines (or comma-separated
// values).
func lines(v string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(v, func(c rune) bool { return c == '\n' || c == '\r' || c == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// routeTestTimeout bounds the DNS lookups of one route dry run.
const routeTestTimeout = 30 * time.Second

func (s *Server) runTest(w http.ResponseWriter, r *http.Request, u *user) {
	tool := r.PathValue("tool")
	form := map[string]string{}
	for _, k := range []string{"client", "helo", "auth", "listener", "from", "rcpts", "header", "addresses", "source", "set", "no_dns", "tls"} {
		form[k] = r.PostFormValue(k)
	}
	data := map[string]any{"Form": form, "Tool": tool}
	dr := s.eng.DryRunner()
	status := http.StatusOK
	bad := func(msg string) {
		data["Error"], status = msg, http.StatusBadRequest
	}
	switch tool {
	case "relay":
		p, msg := gateway.ProbeInput{Client: form["client"], Helo: form["helo"], Auth: form["auth"], TLS: form["tls"] != "",
			Listener: form["listener"], From: form["from"], Rcpts: lines(form["rcpts"]), Header: headerBlock(form["header"])}.Probe()
		if msg != "" {
			bad(msg)
			break
		}
		steps, err := dr.Decide(p)
		if err != nil {
			bad(err.Error())
			break
		}
		data["Steps"] = steps
	case "route":
		var client *netip.Addr
		if c := strings.TrimSpace(form["client"]); c != "" {
			ip, err := netip.ParseAddr(c)
			if err != nil {
				bad(tr(s.lang(w, r), "err.test_client", c))
				break
			}
			client = &ip
		}
		addrs := lines(form["addresses"])
		if len(addrs) == 0 {
			bad(tr(s.lang(w, r), "err.test_addresses"))
			break
		}
		ctx, cancel := context.WithTimeout(r.Context(), routeTestTimeout)
		var res []gateway.RouteResult
		for _, a := range addrs {
			res = append(res, dr.ExplainRoute(ctx, a, form["from"], client, form["no_dns"] != ""))
		}
		cancel()
		data["Routes"] = res
	case "accounts":
		addrs := lines(form["addresses"])
		if len(addrs) == 0 {
			bad(tr(s.lang(w, r), "err.test_addresses"))
			break
		}
		var res []gateway.AddressCheck
		for _, a := range addrs {
			res = append(res, dr.CheckAddress(a))
		}
		data["Checks"] = res
	case "rewrite":
		res, msg := s.rewriteTest(r, dr, form)
		if msg != "" {
			bad(msg)
			break
		}
		data["Rewrite"] = res
	default:
		s.fail(w, r, u, http.StatusNotFound, "err.not_found")
		return
	}
	s.render(w, r, u, status, "tests", data)
}

// headerBlock turns a header pasted into a form into a header block (the
// browser sends CRLF; an empty line ends it).
func headerBlock(h string) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return ""
	}
	return strings.ReplaceAll(strings.ReplaceAll(h, "\r\n", "\n"), "\n", "\r\n") + "\r\n\r\n"
}

// rewriteResult is rewrite test --message's answer: with no rule set
// named, one block per copy (per next hop) as the delivery runner makes
// it (gateway.DryRunner.Copies, what the command prints); with a set, that
// set's rewrite of the whole header.
type rewriteResult struct {
	FileName    string
	Source      string
	RuleSet     string // "" for the copies
	From        string
	To          string
	FromHeader  bool
	RcptsHeader bool
	Queued      string // the recipients as DATA queues them
	Copies      []rewriteCopy
	Error       string
}

type rewriteCopy struct {
	Route, NextHop string
	From, To       string
	Diff           string
	Trace          []rewrite.Step
	Error          string
}

// maxTestHeader bounds the header read from an uploaded message (the
// body is never read).
const maxTestHeader = 1 << 20

func (s *Server) rewriteTest(r *http.Request, dr *gateway.DryRunner, form map[string]string) (*rewriteResult, string) {
	src, err := rewrite.ParseSource(form["source"])
	if err != nil {
		return nil, "source: " + err.Error()
	}
	f, fh, err := r.FormFile("message")
	if err != nil {
		return nil, "choose a message file (.eml)"
	}
	defer f.Close()
	hdr, err := rewrite.ReadHeader(bufio.NewReader(f), maxTestHeader)
	if err != nil {
		return nil, "the message: " + err.Error()
	}
	res := &rewriteResult{FileName: fh.Filename, Source: src.String()}
	from, rcpts := strings.TrimSpace(form["from"]), lines(form["rcpts"])
	hFrom, hRcpts := rewrite.EnvelopeFromHeader(hdr)
	if from == "" {
		from, res.FromHeader = hFrom, true
	} else if from == "<>" {
		from = ""
	} else if from, err = policy.ParseAddress(from); err != nil {
		return nil, "from: " + err.Error()
	}
	if len(rcpts) == 0 {
		rcpts, res.RcptsHeader = hRcpts, true
	} else {
		for i, a := range rcpts {
			if rcpts[i], err = policy.ParseAddress(a); err != nil {
				return nil, "rcpts: " + a + ": " + err.Error()
			}
		}
	}
	res.From, res.To = from, strings.Join(rcpts, ", ")
	if name := strings.TrimSpace(form["set"]); name != "" {
		set, ok := dr.Rewriter().Set(name)
		if !ok {
			return nil, "set: no rule set " + name + " in rewrite.sets"
		}
		res.RuleSet = "rewrite.sets " + name
		out, err := set.Rewrite(rewrite.Input{From: from, To: rcpts, Header: hdr, Source: src})
		c := rewriteCopy{Route: res.RuleSet, From: out.From, To: strings.Join(out.To, ", "), Trace: out.Trace,
			Diff: rewrite.DiffHeader(hdr, out.Header, "received", "rewritten")}
		if err != nil {
			c.Error = err.Error()
		}
		res.Copies = []rewriteCopy{c}
		return res, ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), routeTestTimeout)
	defer cancel()
	dc, err := dr.Copies(ctx, gateway.CopyProbe{Source: src, From: from, Rcpts: rcpts, Header: hdr, NoDNS: form["no_dns"] != ""})
	if err != nil {
		res.Error = "the receive-time rewrite fails (DATA answers 451): " + err.Error()
	}
	var queued []string
	for _, q := range dc.Queued.Rcpts {
		queued = append(queued, q.Addr)
	}
	res.Queued = strings.Join(queued, ", ")
	for k, c := range dc.Copies {
		rc := rewriteCopy{Route: c.Decision.Label(), NextHop: c.Decision.Summary(), From: c.Out.From,
			To: strings.Join(c.Out.To, ", "), Trace: c.Out.Trace}
		if c.Err != nil {
			rc.Error = c.Err.Error()
		}
		if c.Out.Header != nil {
			rc.Diff = rewrite.DiffHeader(hdr, c.Out.Header, "queued", fmt.Sprintf("copy %d: %s", k+1, rc.Route))
		}
		res.Copies = append(res.Copies, rc)
	}
	return res, ""
}
