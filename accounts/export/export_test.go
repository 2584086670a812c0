package export

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/accounts"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opt    Options
		format string
		header int
		want   []string // recordString of each record
		errs   []string // "LINE: reason prefix" of each line error
		fatal  string   // substring of a whole-input error
	}{
		{
			name:   "tsv with english header, CRLF and LF mixed",
			in:     "Mail\tDisplay Name\tFlags\r\ntanaka@example.jp\tTanaka\t-\nsuzuki@example.jp\tSuzuki\toutbound_blocked\r\n",
			format: "tsv", header: 1,
			want: []string{`2 account tanaka@example.jp name="Tanaka" flags=-`, `3 account suzuki@example.jp name="Suzuki" flags=outbound_blocked`},
		},
		{
			name:   "half-width katakana and full-width headers",
			in:     "ﾒｰﾙｱﾄﾞﾚｽ\tＮＡＭＥ\ntanaka@example.jp\t田中\n",
			format: "tsv", header: 1,
			want: []string{`2 account tanaka@example.jp name="田中" flags=-`},
		},
		{
			name:   "account and mail: mail wins, account is a login name",
			in:     "user,mail,name\nt.tanaka,tanaka@example.jp,田中\nsuzuki,,鈴木\n",
			opt:    Options{Domain: "example.jp"},
			format: "csv", header: 1,
			want: []string{`2 account tanaka@example.jp name="田中" flags=-`, `3 account suzuki@example.jp name="鈴木" flags=-`},
		},
		{
			name:   "domain column with a leading @ and upper case",
			in:     "account\tdomain\ntanaka\t@Example.JP\nsuzuki@example.jp\texample.jp\n",
			format: "tsv", header: 1,
			want: []string{`2 account tanaka@example.jp name="" flags=-`, `3 account suzuki@example.jp name="" flags=-`},
		},
		{
			name:   "local part plus default domain over the address limit",
			in:     "account\tname\n" + strings.Repeat("a", 64) + "\tx\nb c\ty\n",
			opt:    Options{Domain: strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 63) + ".jp"},
			format: "tsv", header: 1,
			errs: []string{`2: account "aaaa`, `3: account "b c": white space in the local part`},
		},
		{
			name:   "secret column passes through and is never echoed",
			in:     "mail\tsecret\ntanaka@example.jp\t{SSHA}abc\nsuzuki@example.jp\tpw\x07word\n",
			format: "tsv", header: 1,
			want: []string{`2 account tanaka@example.jp name="" flags=- secret="{SSHA}abc"`},
			errs: []string{"3: secret: contains the control character U+0007"},
		},
		{
			name:   "columns option with a header line that is skipped",
			in:     "ログイン\t表示\tx\ntanaka\t田中\t1\n",
			opt:    Options{Columns: []string{"account,name", "-"}, Domain: "example.jp"},
			format: "tsv", header: 0,
			// "ログイン" and "表示" are not column names, so line 1 is data.
			want: []string{`1 account ログイン@example.jp name="表示" flags=-`, `2 account tanaka@example.jp name="田中" flags=-`},
		},
		{
			name:   "columns option skips a recognizable header",
			in:     "mail,name\ntanaka@example.jp,田中\n",
			opt:    Options{Columns: []string{"mail", "name"}},
			format: "csv", header: 1,
			want: []string{`2 account tanaka@example.jp name="田中" flags=-`},
		},
		{
			name:   "columns option without any header",
			in:     "tanaka@example.jp\t田中\t無効\n",
			opt:    Options{Columns: []string{"mail", "name", "flags"}},
			format: "tsv",
			want:   []string{`1 account tanaka@example.jp name="田中" flags=disabled`},
		},
		{
			name:   "header commented out on the line before the data",
			in:     "# exported 2024-04-01\n#mail\tname\ntanaka@example.jp\t田中\n",
			format: "tsv", header: 2,
			want: []string{`3 account tanaka@example.jp name="田中" flags=-`},
		},
		{
			name:   "commented header in csv",
			in:     "#\"mail\",\"name\"\ntanaka@example.jp,田中\n",
			format: "csv", header: 1,
			want: []string{`2 account tanaka@example.jp name="田中" flags=-`},
		},
		{
			name:   "list with a Japanese header",
			in:     "メールアドレス\r\ntanaka@example.jp\r\n",
			format: "list", header: 1,
			want: []string{`2 account tanaka@example.jp name="" flags=-`},
		},
		{
			name:   "list of local parts with a default domain",
			in:     "アカウント\ntanaka\nsuzuki@other.jp\n",
			opt:    Options{Domain: "example.jp"},
			format: "list", header: 1,
			want: []string{`2 account tanaka@example.jp name="" flags=-`, `3 account suzuki@other.jp name="" flags=-`},
		},
		{
			name:   "restrict refuses other domains, for aliases too",
			in:     "mail\talias\ttarget\ntanaka@example.jp\t\t\nsuzuki@other.jp\t\t\n\tinfo@other.jp\ttanaka@example.jp\n\tsales\tsomeone@other.jp\n",
			opt:    Options{Domain: "example.jp", Restrict: true},
			format: "tsv", header: 1,
			want: []string{`2 account tanaka@example.jp name="" flags=-`, `5 alias sales@example.jp -> someone@other.jp`},
			errs: []string{"3: domain other.jp is not example.jp", "4: alias info@other.jp: domain other.jp is not example.jp"},
		},
		{
			name:   "duplicates fold case by default",
			in:     "Tanaka@example.jp\ntanaka@EXAMPLE.jp\n",
			format: "list",
			want:   []string{`1 account Tanaka@example.jp name="" flags=-`},
			errs:   []string{"2: duplicate account tanaka@example.jp (first at line 1)"},
		},
		{
			name:   "case-sensitive domain keeps both",
			in:     "Tanaka@example.jp\ntanaka@example.jp\n",
			opt:    Options{FoldLocal: func(d string) bool { return d != "example.jp" }},
			format: "list",
			want:   []string{`1 account Tanaka@example.jp name="" flags=-`, `2 account tanaka@example.jp name="" flags=-`},
		},
		{
			name:   "alias duplicates and partial patterns",
			in:     "alias,target\n2009*@example.jp,*@old.example.jp\n2009*@Example.jp,x@example.jp\n*@example.jp,*@inner.jp\n*,x@example.jp\n",
			opt:    Options{Domain: "example.jp"},
			format: "csv", header: 1,
			want: []string{`2 alias 2009*@example.jp -> *@old.example.jp`, `4 alias *@example.jp -> *@inner.jp`},
			errs: []string{"3: duplicate alias 2009*@example.jp (first at line 2)", "5: duplicate alias *@example.jp (first at line 4)"},
		},
		{
			name:   "alias target checks",
			in:     "alias\ttarget\tflags\ninfo@example.jp\t*@\t\nsales@example.jp\ttanaka\t\nhelp@example.jp\ttanaka@example.jp\t無効\nok@example.jp\ttanaka@[192.0.2.1]\t-\n",
			format: "tsv", header: 1,
			errs: []string{
				`2: target "*@": empty domain`,
				`3: "tanaka" has no '@', and neither a domain column nor a default domain`,
				`4: flags "無効" on an alias`,
				`5: target "tanaka@[192.0.2.1]": an address literal is not a mail domain`,
			},
		},
		{
			name:   "target without alias, and no address at all",
			in:     "mail\talias\ttarget\ttanaka@example.jp\n",
			format: "tsv", fatal: "no header",
		},
		{
			name:   "target cell on an account row",
			in:     "mail\talias\ttarget\ntanaka@example.jp\t\tx@example.jp\n\t\t\n\t\tx@example.jp\n",
			format: "tsv", header: 1,
			errs: []string{`2: target "x@example.jp" without an alias`, `4: target "x@example.jp" without an alias; no address: the mail cell is empty`},
		},
		{
			name:   "excel-quoted tsv cells and literal quotes",
			in:     "mail\tname\n\"tanaka@example.jp\"\t\"Tanaka \"\"Taro\"\"\"\nsuzuki@example.jp\tSuzuki \"Jiro\"\n",
			format: "tsv", header: 1,
			want: []string{`2 account tanaka@example.jp name="Tanaka \"Taro\"" flags=-`, `3 account suzuki@example.jp name="Suzuki \"Jiro\"" flags=-`},
		},
		{
			name:   "csv bare quote is an error on its line, reading goes on",
			in:     "mail,name\ntanaka@example.jp,Ta\"naka\nsuzuki@example.jp,Suzuki\n",
			format: "csv", header: 1,
			want: []string{`3 account suzuki@example.jp name="Suzuki" flags=-`},
			errs: []string{`2: bad quoting at column 21: bare " in non-quoted-field`},
		},
		{
			name:   "csv quoted cell spanning lines keeps physical line numbers",
			in:     "mail,name,memo\na@example.jp,A,\"one\ntwo\nthree\"\nb@example.jp,B,\n",
			format: "csv", header: 1,
			want: []string{`2 account a@example.jp name="A" flags=-`, `5 account b@example.jp name="B" flags=-`},
		},
		{
			name:   "blank rows of empty cells are skipped",
			in:     "mail,name\n,\n  ,  \ntanaka@example.jp,x\n",
			format: "csv", header: 1,
			want: []string{`4 account tanaka@example.jp name="x" flags=-`},
		},
		{
			name:   "name with a tab inside a csv quote",
			in:     "mail,name\ntanaka@example.jp,\"a\tb\"\n",
			format: "csv", header: 1,
			errs: []string{"2: name: contains the control character U+0009"},
		},
		{
			name:   "forced list refuses commas",
			in:     "tanaka@example.jp,suzuki@example.jp\n",
			opt:    Options{Format: "list"},
			format: "list",
			errs:   []string{`1: "tanaka@example.jp,suzuki@example.jp": a list holds one address per line`},
		},
		{
			name:   "forced csv on a tsv file has no header",
			in:     "mail\tname\ntanaka@example.jp\tx\n",
			opt:    Options{Format: "csv"},
			fatal:  "x.txt:1: no header with known column names",
			format: "csv",
		},
		{
			name:   "empty export",
			in:     "# nothing\n\n",
			format: "list",
		},
		{name: "header without an address column", in: "name\tflags\n田中\t-\n", fatal: `x.txt:1: header: no account, mail or alias column among "name", "flags"`},
		{name: "header with a role twice", in: "mail,メール,name\n", fatal: `x.txt:1: header: columns 1 ("mail") and 2 ("メール") both give the mail`},
		{name: "alias without target column", in: "alias,name\n", fatal: "an alias column needs a target column"},
		{name: "target without alias column", in: "mail,target\n", fatal: "a target column needs an alias column"},
		{name: "data without header", in: "tanaka@example.jp\t田中\n", fatal: `x.txt:1: no header with known column names`},
		{name: "unknown column option", in: "x\n", opt: Options{Columns: []string{"mail,foo"}}, fatal: `columns: unknown column name "foo"`},
		{name: "bad format option", in: "x\n", opt: Options{Format: "xlsx"}, fatal: `format "xlsx"`},
		{name: "bad encoding option", in: "x\n", opt: Options{Encoding: "euc-jp"}, fatal: `encoding "euc-jp"`},
		{name: "restrict without domain", in: "x\n", opt: Options{Restrict: true}, fatal: "needs the default domain"},
		{name: "bad default domain", in: "x\n", opt: Options{Domain: "a..b"}, fatal: "default domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.SkipInvalid = true
			res, err := Read(strings.NewReader(tc.in), "x.txt", tc.opt)
			if tc.fatal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fatal) {
					t.Fatalf("error = %v, want one containing %q", err, tc.fatal)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if res.Format != tc.format || res.Header != tc.header {
				t.Errorf("format %q header %d, want %q %d", res.Format, res.Header, tc.format, tc.header)
			}
			var got []string
			for _, r := range res.Records {
				got = append(got, recordString(r))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(res.Errors) != len(tc.errs) {
				t.Fatalf("errors %v, want %d: %q", res.Errors, len(tc.errs), tc.errs)
			}
			for i, e := range res.Errors {
				if s := fmt.Sprintf("%d: %s", e.Line, e.Reason); !strings.HasPrefix(s, tc.errs[i]) {
					t.Errorf("error %d = %q, want prefix %q", i, s, tc.errs[i])
				}
			}
		})
	}
}

// TestBadLinesExact pins the line numbers of testdata/bad.tsv independently
// of the golden file.
func TestBadLinesExact(t *testing.T) {
	f, err := os.Open("testdata/bad.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Read(f, "bad.tsv", Options{})
	if !errors.Is(err, ErrInvalidLines) {
		t.Fatalf("error %v, want ErrInvalidLines", err)
	}
	var lines []int
	for _, e := range res.Errors {
		lines = append(lines, e.Line)
	}
	if want := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 16, 17}; fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("bad lines %v, want %v", lines, want)
	}
	var ok []int
	for _, r := range res.Records {
		ok = append(ok, r.Line)
	}
	if fmt.Sprint(ok) != "[2 14]" {
		t.Errorf("good lines %v, want [2 14]", ok)
	}
}

func TestSkipInvalid(t *testing.T) {
	in := "tanaka@example.jp\nbroken\nsuzuki@example.jp\n"
	res, err := Read(strings.NewReader(in), "list.txt", Options{})
	if !errors.Is(err, ErrInvalidLines) {
		t.Fatalf("without SkipInvalid: error %v, want ErrInvalidLines", err)
	}
	if want := `list.txt: 1 invalid line: list.txt:2: mail "broken" is not an address (no '@')`; err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	if len(res.Records) != 2 || len(res.Errors) != 1 {
		t.Errorf("result not filled alongside the error: %d records, %d errors", len(res.Records), len(res.Errors))
	}
	res, err = Read(strings.NewReader(in), "list.txt", Options{SkipInvalid: true})
	if err != nil || len(res.Records) != 2 || len(res.Errors) != 1 {
		t.Errorf("with SkipInvalid: %v, %d records, %d errors", err, len(res.Records), len(res.Errors))
	}
}

func TestLineErrorString(t *testing.T) {
	e := LineError{Name: "export.tsv", Line: 12, Reason: "duplicate account a@b (first at line 3)"}
	if got, want := e.Error(), "export.tsv:12: duplicate account a@b (first at line 3)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	_, err := Read(failingReader{}, "x.tsv", Options{})
	if err == nil || err.Error() != "x.tsv: disk on fire" {
		t.Errorf("error %v", err)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		in   string
		want accounts.Flags
		err  string
	}{
		{"", 0, ""},
		{"-", 0, ""},
		{"outbound_blocked", accounts.OutboundBlocked, ""},
		{"outbound_blocked,disabled", accounts.OutboundBlocked | accounts.Disabled, ""},
		{"disabled, outbound_blocked", accounts.OutboundBlocked | accounts.Disabled, ""},
		{"外部送信禁止", accounts.OutboundBlocked, ""},
		{"有効 受信のみ", accounts.OutboundBlocked, ""},
		{"無効", accounts.Disabled, ""},
		{"停止、送信禁止", accounts.Disabled | accounts.OutboundBlocked, ""},
		{"Enabled", 0, ""},
		{"SUSPENDED|receive_only", accounts.Disabled | accounts.OutboundBlocked, ""},
		{"有効", 0, ""},
		{"enabled,disabled", 0, "says both enabled and disabled"},
		{"admin", 0, `unknown flag "admin"`},
		{"outbound_blocked,admin", 0, `unknown flag "admin"`},
	}
	for _, tc := range tests {
		got, err := parseFlags(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseFlags(%q) error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("parseFlags(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestHeaderKey(t *testing.T) {
	for in, want := range map[string]role{
		"E-Mail": roleMail, "Mail Address": roleMail, "ｅｍａｉｌ": roleMail, "ﾒｰﾙｱﾄﾞﾚｽ": roleMail,
		"user_id": roleAccount, "ユーザ名": roleAccount, "アカウント": roleAccount,
		"表示名": roleName, "display_name": roleName, "フラグ": roleFlags, "状態": roleFlags,
		"エイリアス": roleAlias, "実アドレス": roleTarget, "Mapped-To": roleTarget, "転送先": roleTarget,
		"ドメイン": roleDomain,
	} {
		if got, ok := lookupColumn(in); !ok || got != want {
			t.Errorf("lookupColumn(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"容量", "quota", "", "mail2"} {
		if r, ok := lookupColumn(in); ok {
			t.Errorf("lookupColumn(%q) = %v, want unknown", in, r)
		}
	}
}

func TestLocalPartChecks(t *testing.T) {
	in := "mail\ntanaka taro@example.jp\na@b@example.jp\nTARO.@example.jp\n"
	res, _ := Read(strings.NewReader(in), "x.tsv", Options{Format: "tsv"})
	want := []string{
		`x.tsv:2: mail "tanaka taro@example.jp": white space in the local part`,
		`x.tsv:3: mail "a@b@example.jp": more than one '@'`,
	}
	if len(res.Errors) != len(want) {
		t.Fatalf("errors %v", res.Errors)
	}
	for i, e := range res.Errors {
		if e.Error() != want[i] {
			t.Errorf("%q, want %q", e.Error(), want[i])
		}
	}
	if len(res.Records) != 1 || res.Records[0].Local != "TARO." {
		t.Errorf("carrier-style local part refused: %+v", res.Records)
	}
}
