package console

import (
	"testing"

	"github.com/sekisho/sekisho/relay/sanitize"
)

func TestReleasePolicy(t *testing.T) {
	c := ReleaseConfig{Default: PolicyApproval, Rules: []ReleaseRule{
		{Policy: PolicySelf, Classes: []string{"text"}},
		{Policy: PolicySelf, Routes: []string{"inner"}, Classes: []string{"pdf", "image/png"}},
		{Policy: PolicyApproval, Classes: []string{"*"}},
	}}
	pdf := sanitize.Attachment{Name: "見積書.PDF", Detected: "application/pdf"}
	png := sanitize.Attachment{Name: "map", Detected: "image/png"}
	xlsm := sanitize.Attachment{Name: "集計.xlsm", Detected: "application/zip"}
	for _, tc := range []struct {
		name  string
		route string
		rep   *sanitize.Report
		want  string
	}{
		{"html only", "inner", &sanitize.Report{HTMLConverted: true}, PolicySelf},
		{"no report", "inner", nil, PolicySelf},
		{"pdf on inner", "inner", &sanitize.Report{Removed: []sanitize.Attachment{pdf, png}}, PolicySelf},
		{"pdf elsewhere", "lgwan", &sanitize.Report{Removed: []sanitize.Attachment{pdf}}, PolicyApproval},
		{"one macro file", "inner", &sanitize.Report{Removed: []sanitize.Attachment{pdf, xlsm}}, PolicyApproval},
	} {
		if got := c.releasePolicy(tc.route, tc.rep); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := (ReleaseConfig{Default: PolicySelf}).releasePolicy("x", &sanitize.Report{Removed: []sanitize.Attachment{xlsm}}); got != PolicySelf {
		t.Errorf("default self: %s", got)
	}
}
