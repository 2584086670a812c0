package sanitize

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/keyerr"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize/convert"
	"github.com/sekisho/sekisho/rewrite"
)

// Config is `relay.sanitize`: which mail is made harmless (無害化)
// before delivery, how, and where the originals are kept.
type Config struct {
	// Rules choose the mail: a message is sanitized for a recipient when
	// one rule matches its source and the recipient's route. No rules:
	// the stage is off.
	Rules []Rule `koanf:"rules"`
	// Charset of the text written: utf-8 or iso-2022-jp.
	Charset string `koanf:"charset"`
	// Links: defang, plain or remove.
	Links string `koanf:"links"`
	// Prefer: which part of a multipart/alternative becomes the text,
	// plain or html.
	Prefer string `koanf:"prefer"`
	// SubjectTag is put before the Subject of a message that lost
	// something ("" for none).
	SubjectTag string `koanf:"subject_tag"`
	// Allow lists what an attachment must be to be kept.
	Allow Allow `koanf:"allow"`
	// Reconstruct chooses, per class of attachment, what becomes of it:
	// kept by the allow list, removed, or converted (reconstruct.go).
	Reconstruct Reconstruct `koanf:"reconstruct"`
	// Convert is the converters' sandbox and limits.
	Convert convert.Config `koanf:"convert"`
	// MaxTextBytes bounds the text of one message held in memory.
	MaxTextBytes queue.ByteSize `koanf:"max_text_bytes"`
	// Quarantine keeps the originals.
	Quarantine QuarantineConfig `koanf:"quarantine"`
}

// Rule selects mail by source and route.
type Rule struct {
	// Source: internet, inner or authenticated.
	Source string `koanf:"source"`
	// Routes are routing.routes[].name values; empty means every route.
	Routes []string `koanf:"routes"`
	// ExceptNetworks are client networks (CIDR or address) whose mail
	// the rule leaves alone: the LGWAN relay, which counts as an internet
	// client to the guard but carries mail between municipalities.
	ExceptNetworks []string `koanf:"except_networks"`
}

// Allow is the attachment allow list: an attachment is kept only
// when its extension is listed, its content (magic bytes) is a listed
// type, and the content is what the extension should hold.
type Allow struct {
	Types      []string `koanf:"types"`
	Extensions []string `koanf:"extensions"`
}

// QuarantineConfig is where originals are kept, and for how long.
type QuarantineConfig struct {
	Dir       string        `koanf:"dir"`
	Retention time.Duration `koanf:"retention"`
}

// DefaultConfig is off (no rules), UTF-8, defanged links, nothing
// allowed, originals kept 14 days.
func DefaultConfig() Config {
	return Config{
		Charset:      CharsetUTF8,
		Links:        LinksDefang,
		Prefer:       "plain",
		MaxTextBytes: 4 << 20,
		Reconstruct:  DefaultReconstruct(),
		Convert:      convert.DefaultConfig(),
		Quarantine:   QuarantineConfig{Dir: "/var/lib/sekisho/quarantine", Retention: 14 * 24 * time.Hour},
	}
}

// Resolve makes the quarantine folder relative to base.
func (c *Config) Resolve(base string) {
	if c.Quarantine.Dir != "" && !filepath.IsAbs(c.Quarantine.Dir) {
		c.Quarantine.Dir = filepath.Join(base, c.Quarantine.Dir)
	}
	c.Convert.Resolve(base)
}

var (
	mediaTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-zA-Z0-9!#$&^_.+-]*$`)
	extRE       = regexp.MustCompile(`^[a-z0-9]+$`)
)

// Validate reports every problem, keys relative to the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	for i, r := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if r.Source == "" {
			bad(key+".source", "required (internet, inner or authenticated)")
		} else if _, err := rewrite.ParseSource(r.Source); err != nil {
			bad(key+".source", "%v", err)
		}
		for j, name := range r.Routes {
			if strings.TrimSpace(name) == "" {
				bad(fmt.Sprintf("%s.routes[%d]", key, j), "empty route name")
			}
		}
		for j, n := range r.ExceptNetworks {
			if _, err := guard.ParseNetwork(n); err != nil {
				bad(fmt.Sprintf("%s.except_networks[%d]", key, j), "%v", err)
			}
		}
	}
	switch c.Charset {
	case CharsetUTF8, CharsetISO2022J:
	default:
		bad("charset", "%q is not an output charset (utf-8, iso-2022-jp)", c.Charset)
	}
	switch c.Links {
	case LinksDefang, LinksPlain, LinksRemove:
	default:
		bad("links", "%q is not a link style (defang, plain, remove)", c.Links)
	}
	switch c.Prefer {
	case "plain", "html":
	default:
		bad("prefer", "%q is not plain or html", c.Prefer)
	}
	if strings.ContainsAny(c.SubjectTag, "\r\n") {
		bad("subject_tag", "contains a line break")
	}
	for i, t := range c.Allow.Types {
		if !mediaTypeRE.MatchString(t) {
			bad(fmt.Sprintf("allow.types[%d]", i), "%q is not a media type in lower case (application/pdf)", t)
		} else if !Detectable(t) {
			bad(fmt.Sprintf("allow.types[%d]", i), "%q is not a type the content check recognizes (%s)", t, strings.Join(DetectableTypes(), ", "))
		}
	}
	for i, e := range c.Allow.Extensions {
		if !extRE.MatchString(e) {
			bad(fmt.Sprintf("allow.extensions[%d]", i), "%q: give the extension in lower case without the dot (pdf)", e)
		} else if !KnownExtension(e) {
			bad(fmt.Sprintf("allow.extensions[%d]", i), "%q has no content check, so no file with it could be kept", e)
		}
	}
	if (len(c.Allow.Types) == 0) != (len(c.Allow.Extensions) == 0) {
		bad("allow", "types and extensions go together (an attachment must match both)")
	}
	if c.MaxTextBytes < 64<<10 {
		bad("max_text_bytes", "must be at least 64KiB, got %d", c.MaxTextBytes)
	}
	if len(c.Rules) > 0 && c.Quarantine.Dir == "" {
		bad("quarantine.dir", "required when rules are set: originals must be kept")
	}
	if c.Quarantine.Retention < time.Hour {
		bad("quarantine.retention", "must be at least 1h, got %v", c.Quarantine.Retention)
	}
	errs = append(errs, c.Reconstruct.validate()...)
	if err := c.Convert.Validate(); err != nil {
		errs = append(errs, keyerr.Prefix("convert.", err))
	}
	return errors.Join(errs...)
}

// Applies reports whether mail from source and client (its address as
// queued; "" when unknown) to a recipient on the named route is sanitized.
func (c Config) Applies(source rewrite.Source, client, route string) bool {
	ip, _ := netip.ParseAddr(client)
	for _, r := range c.Rules {
		if r.takes(source, ip) && (len(r.Routes) == 0 || slices.Contains(r.Routes, route)) {
			return true
		}
	}
	return false
}

// Selects reports whether a rule sanitizes mail from source and client
// on some route.
func (c Config) Selects(source rewrite.Source, client string) bool {
	ip, _ := netip.ParseAddr(client)
	for _, r := range c.Rules {
		if r.takes(source, ip) {
			return true
		}
	}
	return false
}

// takes reports whether the rule is for mail from source and a client at
// ip, whatever its route.
func (r Rule) takes(source rewrite.Source, ip netip.Addr) bool {
	src, _ := rewrite.ParseSource(r.Source)
	return src == source && !inNetworks(ip, r.ExceptNetworks)
}

// inNetworks reports whether ip is in one of the networks (validated).
func inNetworks(ip netip.Addr, networks []string) bool {
	if !ip.IsValid() {
		return false
	}
	for _, n := range networks {
		if p, err := guard.ParseNetwork(n); err == nil && p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// Options are the sanitize options for one message.
func (c Config) Options(releaseID string, keepUntil time.Time) Options {
	return Options{
		Charset: c.Charset, Links: c.Links, Prefer: c.Prefer, SubjectTag: c.SubjectTag,
		AllowTypes: c.Allow.Types, AllowExtensions: c.Allow.Extensions,
		ReleaseID: releaseID, KeepUntil: keepUntil, MaxTextBytes: int64(c.MaxTextBytes),
		Reconstruct: c.Reconstruct,
		// Kept attachments wait beside the originals: a folder the
		// service may write (the unit makes the rest read-only), on the
		// same disk; strays after a crash are swept by Purge.
		TempDir: c.Quarantine.Dir,
	}
}
