package routing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"unicode"

	"github.com/sekisho/sekisho/accounts/charset"
)

// maxGatewayDat bounds the file read: real tables have tens of lines.
const maxGatewayDat = 16 << 20

// GatewayDat is an E-Post gateway.dat converted to routes.
//
// The format is one "domain, host[, port]" per line (spaces around commas
// allowed, port 25 by default), with ';' and '\” starting comment lines.
// The domain may be "example.jp", "*.example.jp", a full address, or "*"
// (everything: it becomes the smart host). The host may be a name, an IP
// address, or "[DNS]" (deliver by MX). Files in Shift_JIS are accepted.
type GatewayDat struct {
	File string
	// Routes in file order, with the line each came from.
	Routes []GatewayEntry
	// SmartHost is set by a "*" line with a host.
	SmartHost *GatewayEntry
	// Notes are lines that convert to nothing because they state the
	// default ("*, [DNS]"), as "FILE:LINE: text".
	Notes []string
	// Problems are the lines that could not be converted, each
	// "FILE:LINE: reason".
	Problems []string
}

// GatewayEntry is one converted line.
type GatewayEntry struct {
	Line  int
	Route RouteConfig // for the smart host only TargetConfig is used
}

// ParseGatewayDat reads a gateway.dat. The error is for an unreadable
// file; lines that cannot be converted are listed in Problems.
func ParseGatewayDat(r io.Reader, file string) (*GatewayDat, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxGatewayDat+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxGatewayDat {
		return nil, fmt.Errorf("%s: larger than %d MiB: not a gateway.dat", file, maxGatewayDat>>20)
	}
	// Windows tools of the E-Post era write Shift_JIS.
	lines, _ := charset.DecodeLines(data, charset.Auto)
	g := &GatewayDat{File: file}
	seen := map[string]int{}
	for i, l := range lines {
		n := i + 1
		line := strings.TrimFunc(l.Text, unicode.IsSpace)
		if line == "" || line[0] == ';' || line[0] == '\'' {
			continue
		}
		if bad := l.Err; bad != nil {
			g.Problems = append(g.Problems, fmt.Sprintf("%s:%d: %s", file, n, bad.LineLeftOut()))
			continue
		}
		e, note, err := parseGatewayLine(line)
		switch {
		case err != nil:
			g.Problems = append(g.Problems, fmt.Sprintf("%s:%d: %v", file, n, err))
			continue
		case note != "":
			g.Notes = append(g.Notes, fmt.Sprintf("%s:%d: %s", file, n, note))
			continue
		}
		key := e.Domain + e.Address
		if prev, dup := seen[key]; dup {
			g.Problems = append(g.Problems, fmt.Sprintf("%s:%d: %s is already routed at line %d", file, n, key, prev))
			continue
		}
		seen[key] = n
		if key == "*" {
			g.SmartHost = &GatewayEntry{Line: n, Route: RouteConfig{TargetConfig: e.TargetConfig}}
			continue
		}
		g.Routes = append(g.Routes, GatewayEntry{Line: n, Route: e})
	}
	return g, nil
}

// parseGatewayLine converts one non-comment line. A note instead of a
// route means the line restates the default.
func parseGatewayLine(line string) (r RouteConfig, note string, err error) {
	fields := strings.Split(line, ",")
	for i := range fields {
		fields[i] = strings.TrimFunc(fields[i], unicode.IsSpace)
	}
	switch {
	case len(fields) < 2:
		return r, "", fmt.Errorf("not a table line: expected \"domain, host[, port]\"")
	case len(fields) > 3:
		return r, "", fmt.Errorf("%d fields, expected \"domain, host[, port]\" (sender conditions are not converted: add sender: to the route by hand)", len(fields))
	}
	dom, host := fields[0], fields[1]
	port := smtpPort
	if len(fields) == 3 && fields[2] != "" {
		if port, err = parsePort(fields[2]); err != nil {
			return r, "", err
		}
	}
	switch {
	case dom == "":
		return r, "", fmt.Errorf("empty domain")
	case dom == "*":
		r.Domain = "*"
	case strings.Contains(dom, "@"):
		m, err := parseAddressPattern(dom)
		if err != nil {
			return r, "", err
		}
		r.Address = m.value
	default:
		m, err := parseDomainPattern(dom, false)
		if err != nil {
			return r, "", err
		}
		r.Domain = m.String()
	}
	r.Name = r.Domain + r.Address
	r.TLS = string(gatewayTLS)
	if strings.EqualFold(host, "[DNS]") {
		if port != smtpPort {
			return r, "", fmt.Errorf("[DNS] delivers by MX, always to port 25, not %d", port)
		}
		if r.Domain == "*" {
			return r, "\"*, [DNS]\" is the default (unmatched domains go by MX): nothing to convert", nil
		}
		r.Targets = []string{"mx"}
		return r, "", nil
	}
	target, err := gatewayTarget(host, port)
	if err != nil {
		return r, "", err
	}
	r.Targets = []string{target}
	return r, "", nil
}

// gatewayTarget checks a host field (no port inside) and joins it with the
// port.
func gatewayTarget(host string, port int) (string, error) {
	if host == "" {
		return "", fmt.Errorf("empty host")
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && ip.Zone() == "" {
		return hostPort{host: ip.Unmap().String(), ip: ip.Unmap(), port: port}.String(), nil
	}
	if strings.Contains(host, ":") {
		return "", fmt.Errorf("host %q: put the port in the third field", host)
	}
	name, err := hostName(host)
	if err != nil {
		return "", fmt.Errorf("host: %v", err)
	}
	return hostPort{host: name, port: port}.String(), nil
}

// gatewayTLS is the TLS mode of the converted routes, written out rather
// than left to the default, so that it can be read and changed.
const gatewayTLS = TLSOpportunistic

// WriteYAML writes the converted table as a `routing:` section.
func (g *GatewayDat) WriteYAML(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Converted from %s by `sekisho import gateway-dat`.\n", oneLine(g.File))
	b.WriteString("# Routes are not tried in file order: an address beats a domain, an exact\n")
	b.WriteString("# domain beats the longest matching *.domain wildcard, and what no route\n")
	b.WriteString("# matches goes to the smart host, or by MX without one.\n")
	b.WriteString("# E-Post sent to these hosts in plain text; tls: opportunistic uses STARTTLS\n")
	b.WriteString("# when a host offers it (certificate not checked) and plain text otherwise.\n")
	b.WriteString("# Write tls: none to send in plain text as E-Post did, or tls: required\n")
	b.WriteString("# (with tls_ca_file) where the host has a certificate to check.\n")
	for _, n := range g.Notes {
		fmt.Fprintf(&b, "# %s\n", oneLine(n))
	}
	b.WriteString("routing:\n")
	if len(g.Routes) == 0 {
		b.WriteString("  routes: []\n")
	} else {
		b.WriteString("  routes:\n")
	}
	for _, e := range g.Routes {
		r := e.Route
		fmt.Fprintf(&b, "    - name: %s # line %d\n", yamlString(r.Name), e.Line)
		if r.Address != "" {
			fmt.Fprintf(&b, "      address: %s\n", yamlString(r.Address))
		} else {
			fmt.Fprintf(&b, "      domain: %s\n", yamlString(r.Domain))
		}
		fmt.Fprintf(&b, "      targets: [%s]\n", yamlString(r.Targets[0]))
		fmt.Fprintf(&b, "      tls: %s\n", yamlString(r.TLS))
	}
	if g.SmartHost != nil {
		fmt.Fprintf(&b, "  smart_host: # line %d: *\n", g.SmartHost.Line)
		fmt.Fprintf(&b, "    targets: [%s]\n", yamlString(g.SmartHost.Route.Targets[0]))
		fmt.Fprintf(&b, "    tls: %s\n", yamlString(g.SmartHost.Route.TLS))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// yamlString quotes s as a JSON string, which is also a YAML double-quoted
// scalar, so '*' and ':' cannot change the meaning.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// oneLine keeps a file name or note from breaking out of a YAML comment.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return '?'
		}
		return r
	}, s)
}
