package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sekisho/sekisho/relay/store"
)

// pageSet is the templates of one language.
type pageSet struct {
	pages map[string]*template.Template
}

// languages: Japanese first; English on request (?lang=en, kept in a
// cookie).
var languages = []string{"ja", "en"}

func loadPages() (map[string]*pageSet, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*pageSet{}
	for _, lang := range languages {
		ps := &pageSet{pages: map[string]*template.Template{}}
		funcs := template.FuncMap{
			"t":        func(key string, a ...any) string { return tr(lang, key, a...) },
			"inert":    inert,
			"when":     func(t time.Time) string { return when(t) },
			"size":     size,
			"join":     strings.Join,
			"inertAll": func(v []string) string { return inert(strings.Join(v, ", ")) },
			"list":     func(v ...string) []string { return v },
		}
		for _, n := range names {
			base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
			if base == "layout" || strings.HasPrefix(base, "_") {
				continue // the layout and the shared parts go with every page
			}
			t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/_*.html", n)
			if err != nil {
				return nil, fmt.Errorf("console templates: %w", err)
			}
			ps.pages[base] = t
		}
		out[lang] = ps
	}
	return out, nil
}

// lang is the request's language: ?lang=, else the cookie, else Japanese.
func (s *Server) lang(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "ja" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "sekisho-lang", Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
		return l
	}
	if c, err := r.Cookie("sekisho-lang"); err == nil && (c.Value == "ja" || c.Value == "en") {
		return c.Value
	}
	return "ja"
}

// page is what every template gets.
type page struct {
	Lang   string
	Other  string // the other language, for the switch
	Path   string // this page's path, for the language switch
	User   *user
	Title  string
	Done   string // a message key after a change (?done=)
	Status int
	Data   any
	// Instance is this gateway's name (shown when several share a store).
	Instance string
	Shared   bool
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, u *user, status int, name string, data any) {
	lang := s.lang(w, r)
	ps := s.pages[lang]
	t := ps.pages[name]
	other := "en"
	if lang == "en" {
		other = "ja"
	}
	p := page{Lang: lang, Other: other, Path: r.URL.Path, User: u, Title: tr(lang, "title."+name), Status: status, Data: data,
		Instance: s.eng.Instance()}
	if st := s.eng.Store(); st != nil {
		p.Shared = st.Postgres()
	}
	if d := r.URL.Query().Get("done"); d != "" && knownMessage(lang, "done."+d) {
		p.Done = "done." + d
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		s.log.Error("console page", "kind", "stop", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fail answers with an error page naming what to do.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, u *user, status int, key string, a ...any) {
	lang := s.lang(w, r)
	s.render(w, r, u, status, "error", tr(lang, key, a...))
}

// audit writes an audit record: a kind=audit log line and a stored
// record (when the store answers).
func (s *Server) audit(r *http.Request, actor, action, object, detail string, ok bool) {
	if actor == "" {
		actor = "-"
	}
	client := clientIP(r).String()
	s.log.Info("console", "kind", "audit", "actor", actor, "action", action, "object", object, "detail", detail,
		"client", client, "ok", ok)
	if st := s.eng.Store(); st != nil {
		if err := st.AddAudit(r.Context(), store.AuditRecord{Actor: actor, Action: action, Object: object,
			Detail: detail, Client: client, OK: ok}); err != nil {
			s.log.Error("audit record not stored", "kind", "store", "action", action, "error", err)
		}
	}
}

// inert makes text from a message safe to look at: html/template already
// escapes it, and this shows the characters that could make it lie about
// itself (bidirectional overrides, which turn "txt.exe" around, other
// format and control characters) as visible codes.
func inert(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '\n' || c == '\t':
			b.WriteRune(c)
		case c == '\r':
		case unicode.Is(unicode.Bidi_Control, c), unicode.Is(unicode.Cf, c), unicode.IsControl(c),
			c == '\u2028', c == '\u2029':
			fmt.Fprintf(&b, "[U+%04X]", c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
