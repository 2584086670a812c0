package sanitize

import (
	"strings"
)

// enrichedToText renders text/enriched (RFC 1896) or, rich set, the
// older text/richtext (RFC 1341) as plain text, as mail clients show
// them: formatting commands go, "<<" (enriched) and "<lt>" (richtext)
// are "<". In enriched text a lone line break is a space and n breaks
// in a row are n-1, except inside <nofill>; parameters (<param>) are not
// text. In richtext every line break is a space and <nl> breaks the
// line.
func enrichedToText(s string, rich bool) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	nofill, param := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '<' && !rich && i+1 < len(s) && s[i+1] == '<':
			if param == 0 {
				b.WriteByte('<')
			}
			i++
		case c == '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 || end > 62 {
				// No command (RFC 1896: at most 60 characters): text.
				if param == 0 {
					b.WriteByte(c)
				}
				continue
			}
			switch strings.ToLower(s[i+1 : i+end]) {
			case "param":
				param++
			case "/param":
				param = max(param-1, 0)
			case "nofill":
				nofill++
			case "/nofill":
				nofill = max(nofill-1, 0)
			case "lt":
				if rich && param == 0 {
					b.WriteByte('<')
				}
			case "nl", "np":
				if rich && param == 0 {
					b.WriteByte('\n')
				}
			}
			i += end
		case param > 0:
		case c == '\n' && rich:
			if !strings.HasSuffix(b.String(), "\n") {
				b.WriteByte(' ') // a break right after <nl> is no space
			}
		case c == '\n' && nofill == 0:
			n := 1
			for i+1 < len(s) && s[i+1] == '\n' {
				n++
				i++
			}
			if n == 1 {
				b.WriteByte(' ')
			} else {
				b.WriteString(strings.Repeat("\n", n-1))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
