package export

import (
	"fmt"
	"io"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
)

// E-Post SMTP Server's own files, read for a migration:
//
//   - alias commands: the epstman lines the vendor documents for bulk alias
//     registration, alone or collected in a shell script (aliimport.sh):
//     ./epstman mode=NA domname=d aliases=a1@d mappedto=real@real.jp
//   - sender.dat: the per-account (inbox\USER\sender.dat) or global
//     destination restriction, "pattern,value" evaluated top-down, -1
//     allowing and 0 refusing ("*@domain.jp,-1" then "*,0": only
//     domain.jp). It becomes outbound_blocked plus an allow list.
//
// Both are read in any encoding Read accepts (Shift_JIS, CR LF), '#' starts
// a comment, and every bad line is reported as FILE:LINE with all its
// problems.

// readText reads and decodes a whole small file.
func readText(r io.Reader, name, encoding string) (decoded, error) {
	enc, err := parseEncoding(encoding)
	if err != nil {
		return decoded{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return decoded{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(raw) > MaxSize {
		return decoded{}, fmt.Errorf("%s: larger than %d MiB", name, MaxSize>>20)
	}
	return decode(name, raw, enc)
}

// eachLine calls fn with every line that is not blank or a comment, CR
// stripped, with its 1-based number. A line ending in '\' continues on the
// next (as in a shell script); it is reported at its first line.
func eachLine(text string, fn func(n int, line string)) {
	var cont strings.Builder
	start := 0
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		if cont.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\"))
			cont.WriteByte(' ')
			continue
		}
		if cont.Len() > 0 {
			cont.WriteString(line)
			line = cont.String()
			cont.Reset()
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		fn(start, t)
	}
	if cont.Len() > 0 {
		fn(start, strings.TrimSpace(cont.String()))
	}
}

// AliasCommandsOptions steer ReadAliasCommands.
type AliasCommandsOptions struct {
	Encoding string // auto, utf-8 or shift_jis
}

// ReadAliasCommands reads epstman alias commands (mode=NA), one per line,
// or a shell script of them. Shell lines that only move around or print
// (cd, echo, set, exit, true, a shebang) are skipped; anything else is an
// error, so that a command the script needs is not silently lost. The
// result's Records are aliases; its Aliases is true.
func ReadAliasCommands(r io.Reader, name string, opt AliasCommandsOptions) (Result, error) {
	d, err := readText(r, name, opt.Encoding)
	if err != nil {
		return Result{}, err
	}
	text := d.text
	res := Result{Format: "epstman", Encoding: d.encoding, BOM: d.bom, Aliases: true, Lines: countLines(text)}
	first := map[string]int{}
	eachLine(text, func(n int, line string) {
		rec, bad := aliasCommand(line)
		if len(bad) == 0 && rec.Alias != "" {
			if f, dup := first[strings.ToLower(rec.Alias)]; dup {
				bad.add("duplicate alias %s (first at line %d)", rec.Alias, f)
			} else {
				first[strings.ToLower(rec.Alias)] = n
			}
		}
		switch {
		case len(bad) > 0:
			res.Errors = append(res.Errors, LineError{Name: name, Line: n, Reason: strings.Join(bad, "; ")})
		case rec.Alias != "":
			rec.Line = n
			res.Records = append(res.Records, rec)
		}
	})
	if len(res.Errors) > 0 {
		return res, invalidLines{name: name, n: len(res.Errors), first: res.Errors[0]}
	}
	return res, nil
}

// shellHarmless are the script lines that carry no alias and are skipped.
var shellHarmless = map[string]bool{"cd": true, "echo": true, "set": true, "exit": true, "true": true, ":": true}

func aliasCommand(line string) (accounts.Record, problems) {
	var bad problems
	words, err := shellWords(strings.TrimRight(strings.TrimSpace(line), ";&"))
	if err != nil {
		bad.add("%v", err)
		return accounts.Record{}, bad
	}
	if len(words) == 0 {
		return accounts.Record{}, nil
	}
	cmd := words[0]
	if i := strings.LastIndexByte(cmd, '/'); i >= 0 {
		cmd = cmd[i+1:]
	}
	if cmd != "epstman" {
		if shellHarmless[cmd] || strings.HasPrefix(line, "#!") {
			return accounts.Record{}, nil
		}
		bad.add("%q is not an epstman command (only epstman mode=NA lines are read)", words[0])
		return accounts.Record{}, bad
	}
	args := map[string]string{}
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			bad.add("argument %q is not key=value", w)
			continue
		}
		k = strings.ToLower(k)
		if _, dup := args[k]; dup {
			bad.add("%s= given twice", k)
		}
		args[k] = v
	}
	if m := args["mode"]; !strings.EqualFold(m, "NA") {
		bad.add("mode=%s is not alias registration (mode=NA)", m)
		return accounts.Record{}, bad
	}
	for _, k := range []string{"aliases", "mappedto"} {
		if args[k] == "" {
			bad.add("%s= is missing", k)
		}
	}
	for k := range args {
		switch k {
		case "mode", "domname", "aliases", "mappedto":
		default:
			bad.add("unknown argument %s=", k)
		}
	}
	if len(bad) > 0 {
		return accounts.Record{}, bad
	}
	dom := ""
	if d := args["domname"]; d != "" {
		if dom, err = addr.Domain(d); err != nil {
			bad.add("domname=%s: %v", d, err)
			return accounts.Record{}, bad
		}
	}
	withDomain := func(s string) string {
		if !strings.Contains(s, "@") && dom != "" {
			return s + "@" + dom
		}
		return s
	}
	pattern, pdom, err := normalizePattern(withDomain(args["aliases"]))
	if err != nil {
		bad.add("aliases=%v", err)
	} else if dom != "" && pdom != dom {
		bad.add("aliases=%s is not in domname=%s", pattern, dom)
	}
	target, err := epostTarget(pattern, withDomain(args["mappedto"]))
	if err != nil {
		bad.add("mappedto=%v", err)
	}
	return accounts.Record{Alias: pattern, Target: target}, bad
}

// epostTarget reads an alias target, with E-Post's partial wildcard: in
// "2009*@d -> 2009*@d" the target's "2009*" stands for the local part
// matched, so it is the target *@d (keep the local part).
func epostTarget(pattern, t string) (string, error) {
	if pl, _, ok := addr.Split(pattern); ok && strings.HasSuffix(pl, "*") && pl != "*" {
		if tl, td, ok := addr.Split(t); ok && tl == pl {
			t = "*@" + td
		}
	}
	return normalizeTarget(t)
}

// shellWords splits a command line as sh does for plain words and quoted
// strings; anything needing expansion ($, `, globs outside quotes) is
// refused, since the script's meaning would depend on the shell.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unclosed %c quote", c)
			}
			q := s[i+1 : i+1+j]
			if c == '"' && strings.ContainsAny(q, "$`\\") {
				return nil, fmt.Errorf("%q needs shell expansion; write the value plainly", q)
			}
			w.WriteString(q)
			inWord = true
			i += j + 1
		case strings.IndexByte("$`|><\\;&", c) >= 0:
			return nil, fmt.Errorf("%q needs a shell (%c); write one epstman command per line with plain values", s, c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
