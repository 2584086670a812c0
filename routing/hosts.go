package routing

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// hostsTable maps canonical host names to their override addresses.
type hostsTable map[string][]netip.Addr

// add appends ip to name's addresses, once.
func (h hostsTable) add(name string, ip netip.Addr) {
	if !slices.Contains(h[name], ip) {
		h[name] = append(h[name], ip)
	}
}

// loadHosts builds the override from the hosts file, then the inline
// entries, which replace the file's entries for the same name.
func loadHosts(entries []HostConfig, file string) (hostsTable, error) {
	h := hostsTable{}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("hosts_file: %v", err)
		}
		defer f.Close()
		errs := parseHosts(f, file, h)
		for i, e := range errs {
			errs[i] = fmt.Errorf("hosts_file: %w", e)
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	inline := hostsTable{}
	for i, e := range entries {
		name, err := hostName(e.Name)
		if err != nil {
			return nil, fmt.Errorf("hosts[%d].name: %v", i, err)
		}
		for j, a := range e.Addrs {
			ip, err := parseIP(a)
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].addrs[%d]: %v", i, j, err)
			}
			inline.add(name, ip)
		}
	}
	for name, ips := range inline {
		h[name] = ips
	}
	return h, nil
}

// parseHosts reads hosts(5) lines, "IP name [alias...]" with '#' comments,
// into h. Each bad line is one error, "FILE:LINE: reason".
func parseHosts(r io.Reader, file string, h hostsTable) []error {
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", file, n, fmt.Sprintf(format, a...)))
		}
		ip, err := parseIP(fields[0])
		if err != nil {
			bad("%v", err)
			continue
		}
		if len(fields) == 1 {
			bad("%s has no host name", fields[0])
			continue
		}
		for _, f := range fields[1:] {
			name, err := hostName(f)
			if err != nil {
				bad("%v", err)
				continue
			}
			h.add(name, ip)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %v", file, n+1, err))
	}
	return errs
}
