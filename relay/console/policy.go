package console

import (
	"path"
	"slices"
	"strings"

	"github.com/sekisho/sekisho/relay/sanitize"
)

// releasePolicy decides who releases an original: each attachment the
// message lost (or "text" when it lost none) takes the policy of the
// first rule matching the route and its class, else the default; one
// part needing approval makes the whole original need it.
func (c ReleaseConfig) releasePolicy(route string, rep *sanitize.Report) string {
	var units [][]string // each unit's classes: extension, detected type, declared type
	if rep != nil {
		for _, a := range rep.Removed {
			ext := strings.TrimPrefix(strings.ToLower(path.Ext(a.Name)), ".")
			units = append(units, []string{ext, strings.ToLower(a.Detected), strings.ToLower(a.Declared)})
		}
	}
	if len(units) == 0 {
		units = [][]string{{"text"}}
	}
	for _, u := range units {
		if c.unitPolicy(route, u) == PolicyApproval {
			return PolicyApproval
		}
	}
	return PolicySelf
}

func (c ReleaseConfig) unitPolicy(route string, classes []string) string {
	for _, r := range c.Rules {
		if len(r.Routes) > 0 && !slices.Contains(r.Routes, route) {
			continue
		}
		for _, want := range r.Classes {
			if want == "*" || want != "" && slices.Contains(classes, want) {
				return r.Policy
			}
		}
	}
	return c.Default
}
