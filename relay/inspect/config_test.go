package inspect

import (
	"testing"

	"github.com/sekisho/sekisho/relay/inspect/dkimsign"
	"github.com/sekisho/sekisho/relay/inspect/milter"
)

func TestInspectConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultConfig()
	c.Milters = []milter.Config{
		{Name: "rspamd", Address: "inet:127.0.0.1:11332"},
		{Name: "rspamd", Address: "bad"},
	}
	c.Auth.SPF = "maybe"
	c.DKIMSign.Keys = []dkimsign.KeyConfig{{Domain: "city.example.jp", Selector: "s1"}}
	want := `milters[1].address: "bad": address bad: missing port in address
milters[1].name: "rspamd" is already used by milters[0]
auth.spf: "maybe" is not off, header or reject
dkim_sign.keys[0].key_file: empty`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}
