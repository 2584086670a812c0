package console

import (
	"bufio"
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/addr"
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
				bad("client: " + c + " is not an IP address")
				break
			}
			client = &ip
		}
		addrs := lines(form["addresses"])
		if len(addrs) == 0 {
			bad("give at least one address")
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
			bad("give at least one address")
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

// rewriteResult is rewrite test --message's answer.
type rewriteResult struct {
	FileName    string
	Source      string
	RuleSet     string
	From, To    string
	OrigFrom    string
	OrigTo      string
	FromHeader  bool
	RcptsHeader bool
	Diff        string
	Trace       []rewrite.Step
	Error       string
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
	rw := dr.Rewriter()
	rs, label := rw.Default(), "rewrite.rules"
	if name := strings.TrimSpace(form["set"]); name != "" {
		set, ok := rw.Set(name)
		if !ok {
			return nil, "set: no rule set " + name + " in rewrite.sets"
		}
		rs, label = set, "rewrite.sets "+name
	}
	res := &rewriteResult{FileName: fh.Filename, Source: src.String(), RuleSet: label}
	from, rcpts := strings.TrimSpace(form["from"]), lines(form["rcpts"])
	hFrom, hRcpts := rewrite.EnvelopeFromHeader(hdr)
	if from == "" {
		from, res.FromHeader = hFrom, true
	} else if from == "<>" {
		from = ""
	} else if from, err = checkAddress(from); err != nil {
		return nil, "from: " + err.Error()
	}
	if len(rcpts) == 0 {
		rcpts, res.RcptsHeader = hRcpts, true
	} else {
		for i, a := range rcpts {
			if rcpts[i], err = checkAddress(a); err != nil {
				return nil, "rcpts: " + a + ": " + err.Error()
			}
		}
	}
	out, err := rs.Rewrite(rewrite.Input{From: from, To: rcpts, Header: hdr, Source: src})
	if err != nil {
		res.Error = err.Error()
	}
	res.From, res.To, res.OrigFrom, res.OrigTo = out.From, strings.Join(out.To, ", "), out.OrigFrom, strings.Join(out.OrigTo, ", ")
	res.Diff = rewrite.DiffHeader(hdr, out.Header, "received", "rewritten")
	res.Trace = out.Trace
	return res, ""
}

// checkAddress reads an address as a client writes it, as rewrite test
// does.
func checkAddress(a string) (string, error) {
	a, err := policy.ParsePath(a)
	if err != nil {
		return "", err
	}
	_, _, err = addr.Parse(a)
	return a, err
}
