package export

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/accounts/addr"
	"github.com/sekisho/sekisho/accounts/charset"
)

// Format names, as accepted in Options.Format and reported in Result.Format.
const (
	FormatAuto = "auto"
	FormatTSV  = "tsv"
	FormatCSV  = "csv"
	FormatList = "list"
)

// MaxSize is the largest export read (bytes): far above a million accounts,
// low enough that a wrong file (a disk image, a mailbox) is refused.
const MaxSize = 512 << 20

// Options say how to read an export. The zero value detects everything.
type Options struct {
	// Format is auto, tsv, csv or list.
	Format string
	// Encoding is auto, utf-8 or shift_jis (also sjis, cp932).
	Encoding string
	// Domain is the default domain: rows that give only a local part (an
	// account or alias cell without '@' and no domain cell) are in it. Rows
	// that name another domain are accepted, unless Restrict is set.
	Domain string
	// Restrict makes Domain the only domain accepted: every other domain is
	// an error on its line. It needs Domain.
	Restrict bool
	// Mailboxes, when set, maps a domain to the domain whose mailboxes it
	// names (accounts.MailboxDomains): Restrict then accepts Domain's twin.
	Mailboxes func(domain string) string
	// Columns names the columns in order (account, mail, domain, name,
	// flags, secret, alias, target, or "-" to ignore one; header synonyms
	// work too). Elements may be comma-separated lists. When given, they
	// override the header; a first line that looks like a header (a cell is
	// a column name, none holds '@') is skipped.
	Columns []string
	// SkipInvalid makes Read return no error for rejected lines: they are
	// still listed in Result.Errors and left out of Result.Records. Without
	// it, Read returns ErrInvalidLines alongside the full Result, so a
	// caller that only checks the error cannot apply a partial export.
	SkipInvalid bool
	// FoldLocal says whether local parts of a domain compare
	// case-insensitively, for the duplicate check. nil means every domain
	// folds (the accounts default).
	FoldLocal func(domain string) bool
}

// Result is what an export holds.
type Result struct {
	// Records are the valid lines in file order; Line is the physical line.
	// Accounts have Local (case as given) and canonical Domain; aliases have
	// Alias and Target with canonical domains.
	Records []accounts.Record
	// Errors are the rejected lines, in file order, one per line.
	Errors []LineError
	// Format and Encoding are what was used (detected or asked for). BOM is
	// true when the file started with a byte order mark.
	Format   string
	Encoding string
	BOM      bool
	// Header is the line of the header that was read or skipped, 0 if none.
	Header int
	// Columns is the meaning given to each column.
	Columns []Column
	// Lines is the number of physical lines in the file.
	Lines int
	// Accounts and Aliases say which kinds of entries the export carries
	// (an account or mail column; an alias column), whether or not a row
	// fills them: a sync keeps the kinds an export does not carry.
	Accounts, Aliases bool
}

// LineError is one rejected line.
type LineError struct {
	Name   string `json:"-"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Reason) }

// ErrInvalidLines is returned (wrapped) with the Result when lines were
// rejected and Options.SkipInvalid is false. Result.Errors lists them.
var ErrInvalidLines = errors.New("invalid lines in export")

// Read reads an export. name is used in messages. The error is for the
// input as a whole: I/O, an undecodable file, no recognizable columns, bad
// options, or (without SkipInvalid) ErrInvalidLines. Problems of single
// lines are in Result.Errors.
func Read(r io.Reader, name string, opt Options) (Result, error) {
	p, err := newParser(name, opt)
	if err != nil {
		return Result{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(raw) > MaxSize {
		return Result{}, fmt.Errorf("%s: larger than %d MiB; not an account export", name, MaxSize>>20)
	}
	text, err := decode(name, raw, p.encoding)
	if err != nil {
		return Result{}, err
	}
	raw = nil
	p.res.Encoding, p.res.BOM = text.encoding, text.bom
	p.res.Lines = countLines(text.text)
	p.res.Records = make([]accounts.Record, 0, p.res.Lines)
	p.firstAccount = make(map[key]int, p.res.Lines)
	if err := p.parse(text.text); err != nil {
		return Result{}, err
	}
	res := p.res
	if p.lay != nil {
		res.Accounts = p.lay.index[roleAccount] >= 0 || p.lay.index[roleMail] >= 0
		res.Aliases = p.lay.index[roleAlias] >= 0
	}
	if len(res.Errors) > 0 && !opt.SkipInvalid {
		return res, invalidLines{name: name, n: len(res.Errors), first: res.Errors[0]}
	}
	return res, nil
}

// invalidLines is ErrInvalidLines with the count and the first line.
type invalidLines struct {
	name  string
	n     int
	first LineError
}

func (e invalidLines) Error() string {
	if e.n == 1 {
		return fmt.Sprintf("%s: 1 invalid line: %v", e.name, e.first)
	}
	return fmt.Sprintf("%s: %d invalid lines, the first %v", e.name, e.n, e.first)
}

func (e invalidLines) Unwrap() error { return ErrInvalidLines }

// parser holds the state of one Read.
type parser struct {
	name     string
	opt      Options
	format   string
	encoding charset.Encoding
	domain   string // canonical Options.Domain
	fold     func(string) bool
	lay      *layout
	explicit *layout // from Options.Columns
	started  bool
	// firstAccount and firstAlias map lookup keys to the line that first
	// defined them.
	firstAccount map[key]int
	firstAlias   map[key]int
	res          Result
	cells        []string // reused by the TSV splitter
}

func newParser(name string, opt Options) (*parser, error) {
	p := &parser{name: name, opt: opt, fold: opt.FoldLocal, firstAlias: map[key]int{}}
	switch f := strings.ToLower(strings.TrimSpace(opt.Format)); f {
	case "", FormatAuto:
		p.format = FormatAuto
	case FormatTSV, FormatCSV, FormatList:
		p.format = f
	default:
		return nil, fmt.Errorf("format %q: want auto, tsv, csv or list", opt.Format)
	}
	var err error
	if p.encoding, err = parseEncoding(opt.Encoding); err != nil {
		return nil, err
	}
	if opt.Domain != "" {
		if p.domain, err = addr.Domain(strings.TrimPrefix(opt.Domain, "@")); err != nil {
			return nil, fmt.Errorf("default domain: %v", err)
		}
		if addr.IsDomainLiteral(p.domain) {
			return nil, fmt.Errorf("default domain %q is an address literal, not a mail domain", opt.Domain)
		}
	}
	if opt.Mailboxes == nil {
		p.opt.Mailboxes = func(d string) string { return d }
	}
	if opt.Restrict && p.domain == "" {
		return nil, errors.New("restricting to one domain needs the default domain")
	}
	if len(opt.Columns) > 0 {
		if p.explicit, err = optionLayout(opt.Columns); err != nil {
			return nil, err
		}
	}
	if p.fold == nil {
		p.fold = func(string) bool { return true }
	}
	return p, nil
}

// parse detects the format from the first content line and feeds every
// row to p.row.
func (p *parser) parse(text string) error {
	first, comment := firstContent(text)
	if p.format == FormatAuto {
		switch {
		case strings.Contains(first, "\t"):
			p.format = FormatTSV
		case strings.Contains(first, ","):
			p.format = FormatCSV
		default:
			p.format = FormatList
		}
	}
	p.res.Format = p.format
	if p.format == FormatCSV {
		return p.parseCSV(text, comment)
	}
	return p.parseLines(text, comment)
}

// firstContent returns the first line that is neither blank nor a comment,
// and the comment line right before it (some exports comment their header
// out), with its line number.
func firstContent(text string) (first string, comment numbered) {
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.HasPrefix(line, "#"):
			comment = numbered{n, line[1:]}
		case strings.TrimSpace(line) == "":
			comment = numbered{}
		default:
			return line, comment
		}
	}
	return "", numbered{}
}

type numbered struct {
	line int
	text string
}

// parseLines reads TSV and list exports: one row per physical line.
func (p *parser) parseLines(text string, comment numbered) error {
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		var cells []string
		if p.format == FormatTSV {
			cells = p.splitTSV(line)
		} else {
			cells = append(p.cells[:0], line)
			p.cells = cells
		}
		if !p.started {
			var hc []string
			if comment.line > 0 {
				if p.format == FormatTSV {
					hc = strings.Split(comment.text, "\t")
				} else {
					hc = []string{comment.text}
				}
			}
			skip, err := p.start(n, cells, comment.line, hc)
			if err != nil {
				return err
			}
			if skip {
				continue
			}
		}
		p.row(n, cells)
	}
	return nil
}

// splitTSV splits at tabs. A cell wrapped in double quotes is unquoted
// ("" is a quote), as Excel writes cells holding commas or quotes; cells
// cannot span lines.
func (p *parser) splitTSV(line string) []string {
	cells := p.cells[:0]
	for {
		i := strings.IndexByte(line, '\t')
		if i < 0 {
			cells = append(cells, unquoteTSV(line))
			break
		}
		cells = append(cells, unquoteTSV(line[:i]))
		line = line[i+1:]
	}
	p.cells = cells
	return cells
}

func unquoteTSV(s string) string {
	t := strings.TrimSpace(s)
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		return strings.ReplaceAll(t[1:len(t)-1], `""`, `"`)
	}
	return s
}

// parseCSV reads a CSV export with encoding/csv: quoted cells may hold
// commas, quotes and line breaks; a row's line is the line it starts on.
func (p *parser) parseCSV(text string, comment numbered) error {
	cr := csv.NewReader(strings.NewReader(text))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	for {
		cells, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			p.badQuoting(pe)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		n, _ := cr.FieldPos(0)
		if allBlank(cells) {
			continue
		}
		if !p.started {
			var hc []string
			if comment.line > 0 {
				hc, _ = csv.NewReader(strings.NewReader(comment.text)).Read()
			}
			skip, err := p.start(n, cells, comment.line, hc)
			if err != nil {
				return err
			}
			if skip {
				continue
			}
		}
		p.row(n, cells)
	}
}

func (p *parser) badQuoting(pe *csv.ParseError) {
	reason := fmt.Sprintf("bad quoting at column %d: %v", pe.Column, pe.Err)
	if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
		lost := fmt.Sprintf("line %d was not read as a row", pe.Line)
		if pe.Line > pe.StartLine+1 {
			lost = fmt.Sprintf("lines %d to %d were not read as rows", pe.StartLine+1, pe.Line)
		}
		reason = fmt.Sprintf("a quoted cell opened on this line is not closed properly (line %d, column %d: %v); %s",
			pe.Line, pe.Column, pe.Err, lost)
	}
	p.fail(pe.StartLine, reason)
}

// start handles the first content row: it decides the columns and says
// whether the row is a header to skip. A header commented out on the line
// just before (hcells, from line hline) is used when the row is data.
func (p *parser) start(n int, cells []string, hline int, hcells []string) (skip bool, err error) {
	p.started = true
	if p.explicit != nil {
		p.lay = p.explicit
		p.res.Columns = p.lay.columns()
		if looksLikeHeader(cells) {
			p.res.Header = n
			return true, nil
		}
		return false, nil
	}
	if looksLikeHeader(cells) {
		lay, err := headerLayout(cells)
		if err != nil {
			return false, fmt.Errorf("%s:%d: header: %v", p.name, n, err)
		}
		p.lay, p.res.Header = lay, n
		p.res.Columns = lay.columns()
		return true, nil
	}
	if hline > 0 && len(hcells) == len(cells) && looksLikeHeader(hcells) {
		if lay, err := headerLayout(hcells); err == nil {
			p.lay, p.res.Header = lay, hline
			p.res.Columns = lay.columns()
			return false, nil
		}
	}
	if p.format == FormatList {
		p.lay = &layout{roles: []role{roleMail}, names: []string{""}}
		for i := range p.lay.index {
			p.lay.index[i] = -1
		}
		p.lay.index[roleMail] = 0
		p.res.Columns = p.lay.columns()
		return false, nil
	}
	return false, fmt.Errorf("%s:%d: no header with known column names (account, mail, domain, name, flags, alias, target, アカウント, メールアドレス, 氏名 ...) and no columns given; first line: %s",
		p.name, n, quoteList(cells))
}

// row checks one data row and adds its record or its error.
func (p *parser) row(n int, cells []string) {
	if allBlank(cells) {
		return
	}
	if len(cells) != len(p.lay.roles) {
		p.fail(n, p.countReason(len(cells)))
		return
	}
	var v row
	for i, r := range p.lay.roles {
		if r != roleIgnore {
			v[r] = strings.TrimSpace(cells[i])
		}
	}
	if p.format == FormatList && strings.ContainsAny(v[roleMail]+v[roleAccount], " \t,;") {
		p.fail(n, fmt.Sprintf("%q: a list holds one address per line", cells[0]))
		return
	}
	var bad problems
	var rec accounts.Record
	if v[roleAlias] != "" {
		rec = p.alias(&v, &bad)
	} else {
		rec = p.account(&v, &bad)
	}
	if len(bad) > 0 {
		p.fail(n, strings.Join(bad, "; "))
		return
	}
	rec.Line = n
	if !rec.IsAlias() {
		rec.Missing = p.missing()
	}
	if rec.IsAlias() {
		l, d, _ := addr.Split(rec.Alias)
		k := p.key(l, d)
		if first, dup := p.firstAlias[k]; dup {
			p.fail(n, fmt.Sprintf("duplicate alias %s (first at line %d)", rec.Alias, first))
			return
		}
		p.firstAlias[k] = n
	} else {
		k := p.key(rec.Local, rec.Domain)
		if first, dup := p.firstAccount[k]; dup {
			p.fail(n, fmt.Sprintf("duplicate account %s@%s (first at line %d)", rec.Local, rec.Domain, first))
			return
		}
		p.firstAccount[k] = n
	}
	p.res.Records = append(p.res.Records, rec)
}

// missing returns the account fields the columns do not carry: a sync
// keeps the directory's values for them. No export carries allow lists.
func (p *parser) missing() accounts.Fields {
	m := accounts.FieldAllow
	if p.lay.index[roleName] < 0 {
		m |= accounts.FieldName
	}
	if p.lay.index[roleFlags] < 0 {
		m |= accounts.FieldFlags
	}
	if p.lay.index[roleSecret] < 0 {
		m |= accounts.FieldSecret
	}
	return m
}

// key identifies an address for the duplicate check: the same as
// addr.Key, without building the string.
type key struct{ local, domain string }

func (p *parser) key(local, domain string) key {
	if p.fold(domain) {
		local = addr.FoldLocal(local)
	}
	return key{local, domain}
}

func (p *parser) countReason(got int) string {
	from := "the columns given"
	if p.explicit == nil && p.res.Header > 0 {
		from = fmt.Sprintf("the header on line %d", p.res.Header)
	}
	if p.format == FormatList {
		return fmt.Sprintf("%d cells, a list holds one address per line", got)
	}
	return fmt.Sprintf("%d cells, but %s has %d", got, from, len(p.lay.roles))
}

func (p *parser) fail(n int, reason string) {
	p.res.Errors = append(p.res.Errors, LineError{Name: p.name, Line: n, Reason: reason})
}

func allBlank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func countLines(text string) int {
	n := strings.Count(text, "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		n++
	}
	return n
}
