package gateway

import (
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/store"
)

func TestUnlockWarnings(t *testing.T) {
	for _, tc := range []struct {
		name       string
		encrypted  string
		storeOn    bool
		consoleURL string
		want       string
	}{
		{"not unlock", sanitize.ActionRemove, false, "", ""},
		{"no store", sanitize.ActionUnlock, false, "", "unlock needs relay.store"},
		{"no console url", sanitize.ActionUnlock, true, "", "console.url is not set"},
		{"all there", sanitize.ActionUnlock, true, "https://console.city.example.lg.jp/", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec, _ := testSections(t)
			sec.Relay.Sanitize.Rules = []sanitize.Rule{{Source: "internet"}}
			sec.Relay.Sanitize.Reconstruct.Encrypted = tc.encrypted
			if tc.storeOn {
				sec.Relay.Store = store.Config{Driver: "sqlite", Path: "x.db"}
			}
			sec.ConsoleURL = tc.consoleURL
			got := unlockWarnings(sec)
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0].Text, tc.want)) {
				t.Errorf("warnings %v, want %q", got, tc.want)
			}
		})
	}
}
