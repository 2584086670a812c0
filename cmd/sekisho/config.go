package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/keyerr"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/configs"
	"github.com/sekisho/sekisho/relay/console"
	"github.com/sekisho/sekisho/relay/gateway"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Config is the whole configuration: one section per package, each owning
// its struct, defaults and validation.
type Config struct {
	Accounts accounts.Config `koanf:"accounts"`
	Rewrite  rewrite.Config  `koanf:"rewrite"`
	Routing  routing.Config  `koanf:"routing"`
	Relay    gateway.Config  `koanf:"relay"`
	Console  console.Config  `koanf:"console"`

	// Source names where the configuration came from, for messages.
	Source string `koanf:"-"`
}

// envPrefix starts every environment override: SEKISHO_RELAY__HOSTNAME sets
// relay.hostname. Only scalar keys can be set this way: lists of domains and
// rules have no stable key path.
const envPrefix = "SEKISHO_"

// configProblems is every problem found in a configuration, so that
// `config check` can list them all at once.
type configProblems struct {
	source   string
	problems []string
	data     []byte // the file, to name the line of each problem
}

// Error lists the problems one a line as FILE:LINE: key.path: reason (the
// line where the key is written, when it is in the file), each once.
func (p *configProblems) Error() string {
	return strings.Join(locateAll(p.source, p.data, p.problems), "\n")
}

// loadConfig reads the file at path (or the embedded quickstart when path is
// empty), applies environment overrides, decodes strictly and validates.
// Relative paths in the file are taken relative to the file's folder.
func loadConfig(path string) (*Config, error) {
	cfg, err := loadConfigLenient(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// configFileError says what to do about a configuration file that
// cannot be read, besides what the system said.
func configFileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w\nGive the path of your configuration (packaging/install.sh installs /etc/sekisho/sekisho.yaml; configs/ holds commented examples), or run `sekisho serve` without one to try the embedded example", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w\nRun the command as root or a member of the sekisho group (packaging/install.sh makes the configuration readable by it), or fix the file's permissions", err)
	}
	return err
}

// loadConfigLenient is loadConfig that also returns what could be read of
// a configuration with problems (nil only when the file cannot be read or
// parsed), so that config check can go on and load the sections that are
// fine.
func loadConfigLenient(path string) (*Config, error) {
	var data []byte
	var base, source string
	if path == "" {
		data, base, source = configs.Quickstart, ".", "quickstart (embedded)"
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, configFileError(path, err)
		}
		abs, _ := filepath.Abs(path)
		data, base, source = b, filepath.Dir(abs), path
	}
	cfg, err := parseConfig(data, source)
	if cfg == nil {
		return nil, err
	}
	cfg.Accounts.Resolve(base)
	cfg.Rewrite.Resolve(base)
	cfg.Routing.Resolve(base)
	cfg.Relay.Resolve(base)
	cfg.Console.Resolve(base)
	if cfg.Console.On() && cfg.Relay.Store.Driver == "" {
		// The console keeps its records in the gateway's folder unless
		// relay.store names a database.
		cfg.Relay.Store.Driver = store.DriverSQLite
	}
	p, _ := err.(*configProblems)
	if verr := cfg.validate(); verr != nil {
		if p == nil {
			p = verr.(*configProblems)
		} else {
			p.problems = append(p.problems, verr.(*configProblems).problems...)
		}
	}
	if p != nil {
		p.data = data
		return cfg, p
	}
	return cfg, nil
}

// config loads the configuration for a command, printing the problems
// when it cannot.
func (env *cmdEnv) config(path string) (*Config, bool) {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return nil, false
	}
	return cfg, true
}

// parseConfig decodes YAML plus environment overrides into a Config that
// starts from every package's defaults. Unknown keys are errors.
func parseConfig(data []byte, source string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(data), yaml.Parser()); err != nil {
		return nil, &configProblems{source: source, problems: []string{yamlProblem(err)}, data: data}
	}
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, envPrefix))
			return strings.ReplaceAll(key, "__", "."), v
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("environment overrides: %w", err)
	}
	unlimited, err := takeUnlimited(k, source)
	if err != nil {
		return nil, err
	}
	decode := func(strict bool) (*Config, error) {
		cfg := defaultConfig()
		cfg.Source = source
		cfg.Relay.Limits.Unlimited = unlimited
		err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{
			Tag: "koanf",
			DecoderConfig: &mapstructure.DecoderConfig{
				DecodeHook: mapstructure.ComposeDecodeHookFunc(
					durationHook, mapstructure.TextUnmarshallerHookFunc()),
				ErrorUnused:      strict,
				WeaklyTypedInput: true,
				Result:           cfg,
				TagName:          "koanf",
			},
		})
		return cfg, err
	}
	// A value of the wrong type is reported and its key dropped, so that
	// the rest of the file is still read and checked: every problem in
	// one run.
	p := &configProblems{source: source, data: data}
	for range 100 {
		_, err := decode(false)
		if err == nil {
			break
		}
		typed := typeProblems(k, err)
		if len(typed) == 0 {
			p.problems = append(p.problems, decodeProblems(err)...)
			return nil, p
		}
		p.problems = append(p.problems, typed...)
	}
	cfg, err := decode(true)
	if err != nil {
		p.problems = append(p.problems, decodeProblems(err)...)
		if cfg, err = decode(false); err != nil {
			return nil, p
		}
	}
	if len(p.problems) > 0 {
		return cfg, p
	}
	return cfg, nil
}

// defaultConfig is every section's defaults, what a file changes.
func defaultConfig() *Config {
	return &Config{
		Accounts: accounts.DefaultConfig(),
		Rewrite:  rewrite.DefaultConfig(),
		Routing:  routing.DefaultConfig(),
		Relay:    gateway.DefaultConfig(),
		Console:  console.DefaultConfig(),
	}
}

// takeUnlimited turns "unlimited" (E-Post's word) into 0 for the limits
// that allow it and returns their keys; gateway.Config.Validate accepts 0
// only for those.
func takeUnlimited(k *koanf.Koanf, source string) ([]string, error) {
	var keys, problems []string
	allowed := gateway.UnlimitedKeys()
	for _, full := range k.Keys() {
		key, ok := strings.CutPrefix(full, "relay.limits.")
		if !ok {
			continue
		}
		s, ok := k.Get(full).(string)
		if !ok || !strings.EqualFold(strings.TrimSpace(s), "unlimited") {
			continue
		}
		if !slices.Contains(allowed, key) {
			problems = append(problems, fmt.Sprintf("%s: unlimited is allowed only for %s", full, strings.Join(allowed, ", ")))
			continue
		}
		if err := k.Set(full, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", full, err)
		}
		keys = append(keys, key)
	}
	if len(problems) > 0 {
		return nil, &configProblems{source: source, problems: problems}
	}
	return keys, nil
}

// validate runs every section's Validate and gathers the problems with
// their full key paths.
func (c *Config) validate() error {
	p := &configProblems{source: c.Source}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"accounts", c.Accounts.Validate()},
		{"rewrite", c.Rewrite.Validate()},
		{"routing", c.Routing.Validate()},
		{"relay", c.Relay.Validate()},
		{"console", c.Console.Validate()},
		{"console", c.Console.CheckTLS(c.Relay.TLS.CertFile != "")},
		{"console", c.Console.CheckRoutes(routeNames(c.Routing))},
		{"relay", c.Console.CheckOutbound(c.Relay.Outbound)},
	} {
		for _, e := range keyerr.Flatten(s.err) {
			p.problems = append(p.problems, s.name+"."+e.Error())
		}
	}
	if len(p.problems) > 0 {
		return p
	}
	return nil
}

// routeNames are the names of routing.routes, for references to them.
func routeNames(c routing.Config) map[string]bool {
	m := map[string]bool{}
	for _, r := range c.Routes {
		if r.Name != "" {
			m[r.Name] = true
		}
	}
	return m
}

var yamlLine = regexp.MustCompile(`yaml: line (\d+): (.*)`)

func yamlProblem(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return "line " + m[1] + ": " + m[2]
	}
	return err.Error()
}

// decodeProblems turns mapstructure's messages ("'relay' has invalid keys:
// typo") into one line per problem with a dotted key path.
func decodeProblems(err error) []string {
	var out []string
	for _, e := range keyerr.Flatten(err) {
		for _, line := range strings.Split(e.Error(), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
			if line == "" || strings.HasPrefix(line, "decoding failed") || strings.HasSuffix(line, "error(s) decoding:") {
				continue
			}
			if m := invalidKeys.FindStringSubmatch(line); m != nil {
				for _, k := range strings.Split(m[2], ", ") {
					key := k
					if m[1] != "" {
						key = m[1] + "." + k
					}
					out = append(out, key+": unknown key")
				}
				continue
			}
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		out = []string{err.Error()}
	}
	return out
}

var invalidKeys = regexp.MustCompile(`^'([^']*)' has invalid keys: (.*)$`)

// durationHook decodes "90s", "8h" and also "2d" (days), which Go's
// time.ParseDuration lacks and mail administrators expect.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return parseDuration(v)
	case int:
		return time.Duration(v) * time.Second, nil
	case float64:
		return time.Duration(v * float64(time.Second)), nil
	}
	return data, nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New(strings.TrimPrefix(err.Error(), "time: "))
	}
	return d, nil
}
