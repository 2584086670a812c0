package sanitize

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/text/width"
)

// Link styles: how a link's target is shown in the text made from HTML.
const (
	LinksDefang = "defang" // hxxps://example[.]jp/path: readable, never made clickable by a mail client
	LinksPlain  = "plain"  // the URL as it is (clients may make it clickable)
	LinksRemove = "remove" // the link text only; the target is dropped
)

// textOut accumulates text with collapsed white space and tracks how many
// line breaks it ends with, so blocks get one blank line between them
// however the HTML nests them.
type textOut struct {
	b     strings.Builder
	nl    int  // line breaks at the end of b
	space bool // a space is pending before the next word
}

func (o *textOut) empty() bool { return o.b.Len() == 0 }

// breakLines makes the text end in at least n line breaks.
func (o *textOut) breakLines(n int) {
	o.space = false
	if o.empty() {
		return
	}
	for o.nl < n {
		o.b.WriteByte('\n')
		o.nl++
	}
}

func (o *textOut) raw(s string, prefix string) {
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			o.b.WriteByte('\n')
			o.nl++
		}
		if line == "" {
			continue
		}
		if o.nl > 0 || o.empty() {
			o.b.WriteString(prefix)
		}
		o.b.WriteString(line)
		o.nl = 0
	}
}

// words writes text with runs of white space collapsed to one space.
// HTML white space is ASCII only (an ideographic space, U+3000, is text
// and stays); a no-break space counts as a space here.
func (o *textOut) words(s, prefix string) {
	if s == "" {
		return
	}
	if n := htmlSpaceAt(s, 0); n > 0 {
		o.space = true
	}
	for i := 0; i < len(s); {
		if n := htmlSpaceAt(s, i); n > 0 {
			i += n
			continue
		}
		j := i
		for j < len(s) && htmlSpaceAt(s, j) == 0 {
			j++
		}
		switch {
		case o.nl > 0 || o.empty():
			o.b.WriteString(prefix)
		case o.space:
			o.b.WriteByte(' ')
		}
		o.b.WriteString(s[i:j])
		o.nl = 0
		o.space = true
		i = j
	}
	if !endsInHTMLSpace(s) {
		o.space = false
	}
}

// htmlSpaceAt is the length of the white space at s[i]: an ASCII space,
// tab, line break or form feed, or a no-break space; 0 for none.
func htmlSpaceAt(s string, i int) int {
	switch s[i] {
	case ' ', '\t', '\r', '\n', '\f':
		return 1
	case 0xc2:
		if i+1 < len(s) && s[i+1] == 0xa0 {
			return 2
		}
	}
	return 0
}

func endsInHTMLSpace(s string) bool {
	n := len(s)
	switch {
	case n >= 1 && htmlSpaceAt(s, n-1) == 1:
		return true
	case n >= 2 && s[n-2] == 0xc2 && s[n-1] == 0xa0:
		return true
	}
	return false
}

type tableState struct {
	rows  [][]*textOut
	outer *textOut
}

type listState struct {
	ordered bool
	n       int
}

type linkState struct {
	href  string
	out   *textOut
	start int
}

// htmlToText renders HTML as readable plain text: paragraphs separated by
// blank lines, lists with bullets or numbers, data tables as aligned
// columns (layout tables, which newsletters nest deeply, as plain blocks),
// links shown per style, images by their alt text. The document is built
// by the HTML5 tree builder, as a browser (and so a mail client) builds
// it: end tags HTML5 lets a writer omit (</head>, </p>, </td>, </object>)
// are implied, <noscript> shows (scripting is off, as in every mail
// client), and only the body is rendered. Script, style and the head never
// show.
func htmlToText(src string, links string) string {
	doc := parseHTML(src)
	if tag, ok := runaway(doc, src); ok {
		// A <title>, <textarea> or <style> never closed swallows the rest
		// of the document as its text, and a browser shows nothing; the
		// text is what the sender meant to show, so the tag is read as an
		// ordinary element instead.
		doc = parseHTML(neutralize(src, tag))
	}
	r := &htmlRenderer{links: links, root: &textOut{}}
	r.out = r.root
	r.walk(doc)
	return tidy(r.root.b.String())
}

func parseHTML(src string) *html.Node {
	doc, err := html.ParseWithOptions(strings.NewReader(src), html.ParseOptionEnableScripting(false))
	if err != nil {
		// Only a failing reader fails the parser; a string does not.
		return &html.Node{Type: html.DocumentNode}
	}
	return doc
}

// runaway finds an RCDATA or raw text element that ran to the end of the
// document.
func runaway(doc *html.Node, src string) (string, bool) {
	var found string
	var visit func(n *html.Node)
	visit = func(n *html.Node) {
		for c := n.FirstChild; c != nil && found == ""; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.DataAtom == atom.Title || c.DataAtom == atom.Textarea || c.DataAtom == atom.Style) {
				if t := c.FirstChild; t != nil && t.Type == html.TextNode && strings.Contains(t.Data, "<") &&
					!containsFold(src, "</"+c.Data) {
					found = c.Data
				}
				continue
			}
			if c.Type == html.ElementNode && (c.DataAtom == atom.Html || c.DataAtom == atom.Head || c.DataAtom == atom.Body) || c.Type == html.DocumentNode {
				visit(c)
			}
		}
	}
	visit(doc)
	return found, found != ""
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}

// neutralize renames the first start tag of an element so the tree
// builder reads it as an ordinary one.
func neutralize(src, tag string) string {
	i := strings.Index(strings.ToLower(src), "<"+tag)
	if i < 0 {
		return src
	}
	return src[:i+1] + "x-" + src[i+1:]
}

type htmlRenderer struct {
	links  string
	root   *textOut
	out    *textOut
	pre    int
	quote  int
	lists  []listState
	tables []*tableState
	anchor []linkState

	prefixFor  [2]int
	prefixText string
}

// prefix is what starts each line at the current depth of quotes and
// lists; it is made again only when the depth changes.
func (r *htmlRenderer) prefix() string {
	depth := [2]int{r.quote, max(len(r.lists)-1, 0)}
	if depth != r.prefixFor {
		r.prefixFor = depth
		r.prefixText = strings.Repeat("> ", depth[0]) + strings.Repeat("  ", depth[1])
	}
	return r.prefixText
}

// walk renders the document depth first without recursion: a mail's
// HTML may nest tens of thousands of elements.
func (r *htmlRenderer) walk(doc *html.Node) {
	type frame struct {
		n    *html.Node
		exit bool
	}
	stack := []frame{{n: doc}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := f.n
		if f.exit {
			r.end(n)
			continue
		}
		switch n.Type {
		case html.TextNode:
			if r.pre > 0 {
				r.out.raw(n.Data, r.prefix())
			} else {
				r.out.words(n.Data, r.prefix())
			}
			continue
		case html.ElementNode:
			if n.Namespace != "" || skipped(n.DataAtom) {
				continue
			}
			r.start(n)
			stack = append(stack, frame{n: n, exit: true})
		case html.DocumentNode:
		default:
			continue
		}
		for c := n.LastChild; c != nil; c = c.PrevSibling {
			stack = append(stack, frame{n: c})
		}
	}
}

func (r *htmlRenderer) start(n *html.Node) {
	out := r.out
	switch a := n.DataAtom; a {
	case atom.Br:
		out.b.WriteByte('\n')
		out.nl++
		out.space = false
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		out.breakLines(2)
	case atom.Pre, atom.Xmp, atom.Listing, atom.Plaintext:
		out.breakLines(2)
		r.pre++
	case atom.Blockquote:
		out.breakLines(2)
		r.quote++
	case atom.Ul, atom.Ol:
		// A list stands apart like a paragraph; a nested one continues
		// its item.
		out.breakLines(2 - min(len(r.lists), 1))
		r.lists = append(r.lists, listState{ordered: a == atom.Ol})
	case atom.Li:
		out.breakLines(1)
		mark, space := "・", false
		if n := len(r.lists); n > 0 {
			r.lists[n-1].n++
			if r.lists[n-1].ordered {
				mark, space = strconv.Itoa(r.lists[n-1].n)+".", true
			}
		}
		out.words(mark, r.prefix())
		out.space = space
	case atom.Hr:
		out.breakLines(1)
		out.words("――――――――――", r.prefix())
		out.breakLines(1)
	case atom.Img:
		if alt := strings.TrimSpace(attr(n, "alt")); alt != "" {
			out.words("[画像: "+alt+"]", r.prefix())
		}
	case atom.A:
		r.anchor = append(r.anchor, linkState{href: strings.TrimSpace(attr(n, "href")), out: out, start: out.b.Len()})
	case atom.Table:
		r.tables = append(r.tables, &tableState{outer: out})
	case atom.Tr:
		if k := len(r.tables); k > 0 {
			r.tables[k-1].rows = append(r.tables[k-1].rows, nil)
		}
	case atom.Td, atom.Th:
		if k := len(r.tables); k > 0 {
			t := r.tables[k-1]
			if len(t.rows) == 0 {
				t.rows = append(t.rows, nil)
			}
			cell := &textOut{}
			t.rows[len(t.rows)-1] = append(t.rows[len(t.rows)-1], cell)
			r.out = cell
		}
	default:
		if blockTag(a) {
			out.breakLines(1)
		}
	}
}

func (r *htmlRenderer) end(n *html.Node) {
	out := r.out
	switch a := n.DataAtom; a {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		out.breakLines(2)
	case atom.Pre, atom.Xmp, atom.Listing, atom.Plaintext:
		r.pre = max(r.pre-1, 0)
		out.breakLines(2)
	case atom.Blockquote:
		r.quote = max(r.quote-1, 0)
		out.breakLines(2)
	case atom.Ul, atom.Ol:
		if len(r.lists) > 0 {
			r.lists = r.lists[:len(r.lists)-1]
		}
		out.breakLines(2 - min(len(r.lists), 1))
	case atom.A:
		if k := len(r.anchor); k > 0 {
			l := r.anchor[k-1]
			r.anchor = r.anchor[:k-1]
			if l.out == out {
				text := out.b.String()[min(l.start, out.b.Len()):]
				if t := linkTarget(l.href, text, r.links); t != "" {
					out.space = true
					out.words(t, r.prefix())
				}
			}
		}
	case atom.Td, atom.Th:
		if k := len(r.tables); k > 0 {
			r.out = r.tables[k-1].outer
		}
	case atom.Table:
		if k := len(r.tables); k > 0 {
			t := r.tables[k-1]
			r.tables = r.tables[:k-1]
			r.out = t.outer
			renderTable(r.out, t.rows, r.prefix())
		}
	default:
		if blockTag(a) {
			out.breakLines(1)
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// skipped elements never show: scripts, styles, the head's, embedded
// documents and media, form controls' option lists.
func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Svg, atom.Math,
		atom.Iframe, atom.Frame, atom.Frameset, atom.Noframes, atom.Noembed, atom.Param, atom.Select, atom.Meta, atom.Link:
		return true
	}
	return false
}

func blockTag(a atom.Atom) bool {
	switch a {
	case atom.Div, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Nav, atom.Aside,
		atom.Main, atom.Address, atom.Center, atom.Figure, atom.Figcaption, atom.Form, atom.Fieldset,
		atom.Dl, atom.Dt, atom.Dd, atom.Caption, atom.Body, atom.Html:
		return true
	}
	return false
}

// linkTarget is what follows a link's text: the target in brackets, unless
// the style drops it or the text already is the target.
func linkTarget(href, text, style string) string {
	if href == "" || strings.HasPrefix(href, "#") || style == LinksRemove {
		return ""
	}
	low := strings.ToLower(href)
	if strings.HasPrefix(low, "javascript:") || strings.HasPrefix(low, "data:") || strings.HasPrefix(low, "cid:") {
		return ""
	}
	if strings.HasPrefix(low, "mailto:") {
		href = href[len("mailto:"):]
		if i := strings.IndexByte(href, '?'); i >= 0 {
			href = href[:i]
		}
	}
	t := strings.TrimSpace(text)
	if t == href || strings.TrimRight(t, "/") == strings.TrimRight(href, "/") {
		return ""
	}
	return "[" + href + "]"
}

// renderTable writes a data table (every row one line, at least two
// columns, short cells) as aligned columns, and anything else (the layout
// tables of newsletters) as one block per cell.
func renderTable(out *textOut, rows [][]*textOut, prefix string) {
	cells := make([][]string, 0, len(rows))
	blocks := make([][]string, 0, len(rows))
	cols, data := 0, true
	for _, r := range rows {
		if len(r) == 0 {
			continue
		}
		var line []string
		for _, c := range r {
			s := strings.TrimSpace(c.b.String())
			// A short cell broken by <br> ("住所<br>電話") still fits a
			// column on one line; long or block content means layout.
			if strings.Contains(s, "\n") {
				s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " / ")), " ")
				if strings.Count(c.b.String(), "\n\n") > 0 {
					data = false
				}
			}
			if displayWidth(s) > 40 {
				data = false
			}
			line = append(line, s)
		}
		cols = max(cols, len(line))
		cells = append(cells, line)
		var block []string
		for _, c := range r {
			block = append(block, strings.TrimSpace(c.b.String()))
		}
		blocks = append(blocks, block)
	}
	if cols < 2 || len(cells) < 1 {
		data = false
	}
	out.breakLines(2)
	if !data {
		for _, line := range blocks {
			for _, s := range line {
				if s != "" {
					out.raw(s, prefix)
					out.breakLines(2)
				}
			}
		}
		return
	}
	widths := make([]int, cols)
	for _, line := range cells {
		for i, s := range line {
			widths[i] = max(widths[i], displayWidth(s))
		}
	}
	for _, line := range cells {
		var b strings.Builder
		for i := 0; i < cols; i++ {
			s := ""
			if i < len(line) {
				s = line[i]
			}
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(s)
			if i < cols-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(s)))
			}
		}
		out.raw(strings.TrimRight(b.String(), " "), prefix)
		out.breakLines(1)
	}
	out.breakLines(2)
}

// displayWidth counts East Asian wide and full-width characters as two
// columns, as a fixed-width font shows them.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		if r < 0x1100 { // nothing wide comes before Hangul Jamo
			n++
			continue
		}
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// tidy trims trailing spaces and keeps at most one blank line in a row.
func tidy(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	blank, started := 0, false
	for line := range strings.SplitSeq(s, "\n") {
		l := strings.TrimRight(line, " \t")
		if l == "" {
			blank++
			continue
		}
		if started {
			b.WriteByte('\n')
			if blank > 0 {
				b.WriteByte('\n')
			}
		}
		b.WriteString(l)
		started, blank = true, 0
	}
	return b.String()
}
