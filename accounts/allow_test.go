package accounts

import (
	"bytes"
	"strings"
	"testing"
)

func TestOutboundAllowed(t *testing.T) {
	cfg := twinConfig(false)
	cfg.Accounts = []AccountConfig{{Address: "baito@city.toyokawa.lg.jp", OutboundBlocked: true,
		OutboundAllow: []string{"*@Partner.JP", "*@*.ken.jp", "Sato@other.jp", "bare.jp"}}}
	d, err := Build(cfg, "dir.tsv", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := d.Lookup("baito@city.toyokawa.aichi.jp")
	for rcpt, want := range map[string]bool{
		"x@partner.jp": true, "x@sub.partner.jp": false, "a@pref.ken.jp": true, "a@ken.jp": false,
		"sato@other.jp": true, "suzuki@other.jp": false, "y@bare.jp": true, "z@example.com": false,
	} {
		if got := d.OutboundAllowed(r.Account, rcpt); got != want {
			t.Errorf("OutboundAllowed(baito, %s) = %v, want %v", rcpt, got, want)
		}
	}
}

func TestNormalizeAllowErrors(t *testing.T) {
	for in, want := range map[string]string{
		"a*b@x.jp": "'*' is allowed only as the whole local part",
		"s@*.x.jp": "a subdomain wildcard needs '*'",
		"*@":       "is not *@domain",
		"*@x..jp":  "allow entry",
	} {
		if _, err := NormalizeAllow(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NormalizeAllow(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestFileAllowLines(t *testing.T) {
	recs := []Record{{Local: "baito", Domain: "a.lg.jp", Flags: OutboundBlocked, Allow: []string{"*@partner.jp", "sato@x.jp"}}}
	var buf bytes.Buffer
	if err := WriteRecords(&buf, recs); err != nil {
		t.Fatal(err)
	}
	want := "account\tbaito@a.lg.jp\toutbound_blocked\t-\t-\nallow\tbaito@a.lg.jp\t*@partner.jp,sato@x.jp\n"
	if !strings.HasSuffix(buf.String(), want) {
		t.Fatalf("written:\n%s\nwant suffix\n%s", buf.String(), want)
	}
	got, err := ParseFile("dir", buf.Bytes())
	if err != nil || len(got) != 1 || strings.Join(got[0].Allow, ",") != "*@partner.jp,sato@x.jp" {
		t.Errorf("read back %+v, %v", got, err)
	}
	for in, msg := range map[string]string{
		fileHeader + "\nallow\tbaito@a.lg.jp\t*@p.jp\n":                                                "dir:2: allow line for baito@a.lg.jp must follow",
		fileHeader + "\naccount\tbaito@a.lg.jp\t-\t-\t-\nallow\tbaito@a.lg.jp\n":                       "dir:3: allow line needs 3",
		fileHeader + "\naccount\tbaito@a.lg.jp\t-\t-\t-\nallow\tbaito@a.lg.jp\ta*b@x.jp\n":             "dir:3: allow entry",
		fileHeader + "\naccount\tb@a.lg.jp\t-\t-\t-\nallow\tb@a.lg.jp\tx.jp\nallow\tb@a.lg.jp\ty.jp\n": "dir:4: a second allow line",
	} {
		if _, err := ParseFile("dir", []byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseFile(%q) = %v, want %q", in, err, msg)
		}
	}
}
