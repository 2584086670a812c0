package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/console"

	"go.yaml.in/yaml/v3"

	"github.com/sekisho/sekisho/relay/gateway"
)

func init() {
	register(&command{
		name:    "config check",
		summary: "check a configuration file and list every problem",
		run:     runConfigCheck,
	})
}

func runConfigCheck(env *cmdEnv, args []string) int {
	fs := newFlags(env, "config check", "[-c] FILE [--show] [--strict]", `
Reads the configuration FILE (the embedded quickstart only when no file is
given), applies the SEKISHO_* environment overrides, loads what it refers
to — the accounts directory, rewrite tables, routes, relay rules, the TLS
certificate — as serve would, and lists every problem in one run as
FILE:LINE: key.path: reason. Then it warns about what loads but misroutes
or refuses mail: a smart host or route for another domain that points at
the inner server (mail loops), a rule that takes away the inner networks'
trust, an own domain no route names or that is not routed to the inner
server, secrets SMTP AUTH cannot use. Exit 1 if there is any problem (with
--strict, also any warning).
With --show it prints the effective configuration (defaults, file and
environment merged) with secrets redacted, like postconf -n.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	show := fs.Bool("show", false, "print the effective configuration, secrets redacted")
	strict := fs.Bool("strict", false, "treat warnings as problems (exit 1)")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if *cfgPath, st = configArg(env, "config check", *cfgPath, pos); st >= 0 {
		return st
	}
	f, err := checkConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	cfg := f.cfg
	if len(f.problems.problems) > 0 {
		fmt.Fprintln(env.stderr, f.problems.Error())
	}
	for _, w := range f.warnings {
		fmt.Fprintln(env.stderr, "warning: "+w)
	}
	if len(f.problems.problems) > 0 || (*strict && len(f.warnings) > 0) {
		return exitFinding
	}
	for _, w := range cfg.Relay.Warnings() {
		fmt.Fprintf(env.stderr, "%s: warning: relay.%s\n", cfg.Source, w)
	}
	if *show {
		out, err := showConfig(cfg)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		env.stdout.Write(out)
		return exitOK
	}
	for _, w := range mirrorRouteWarnings(cfg.Accounts, cfg.Routing) {
		fmt.Fprintf(env.stdout, "%s: warning: %s\n", cfg.Source, w)
	}
	fmt.Fprintf(env.stdout, "%s: ok\n", cfg.Source)
	return exitOK
}

// configFindings is what config check finds in a configuration.
type configFindings struct {
	cfg      *Config
	problems *configProblems
	warnings []string // FILE:LINE: key: reason
}

// checkConfig loads the configuration at path (the embedded quickstart for
// "") with what it refers to, as serve would, and collects every problem
// and warning: config check prints them, the console's configuration page
// shows them.
func checkConfig(path string) (*configFindings, error) {
	cfg, err := loadConfigLenient(path)
	if cfg == nil {
		return nil, err
	}
	p, _ := err.(*configProblems)
	if p == nil {
		p = &configProblems{source: cfg.Source}
		if path != "" {
			p.data, _ = os.ReadFile(path)
		}
	}
	skip := map[string]bool{}
	for _, s := range p.problems {
		section, rest, _ := strings.Cut(s, ".")
		if section == "relay" {
			// Only the parts of relay that CheckAll loads.
			part, _, _ := strings.Cut(rest, ".")
			part, _, _ = strings.Cut(part, "[")
			section += "." + part
		}
		skip[section] = true
	}
	problems, warnings := gateway.CheckAll(cfg.sections(), skip)
	for _, f := range problems {
		p.problems = append(p.problems, f.String())
	}
	var ws []string
	for _, f := range warnings {
		ws = append(ws, f.String())
	}
	if !skip["relay.outbound"] && !skip["console"] {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ws = append(ws, cfg.Console.OutboundWarnings(ctx, cfg.Relay.Outbound)...)
		cancel()
	}
	return &configFindings{cfg: cfg, problems: p, warnings: locateAll(cfg.Source, p.data, ws)}, nil
}

// showConfig is the effective configuration as YAML, secrets redacted
// (config check --show, the console's configuration page).
func showConfig(cfg *Config) ([]byte, error) {
	shown := redacted(reflect.ValueOf(*cfg))
	showUnlimited(shown, cfg.Relay.Limits.Unlimited)
	return yaml.Marshal(shown)
}

// consoleConfigReport is the console's configuration page for path: what
// config check --show prints, with the findings, read again each time.
func consoleConfigReport(path string) console.ConfigReport {
	f, err := checkConfig(path)
	if err != nil {
		return console.ConfigReport{Source: path, Problems: []string{err.Error()}}
	}
	rep := console.ConfigReport{Source: f.cfg.Source, Warnings: f.warnings}
	if len(f.problems.problems) > 0 {
		rep.Problems = strings.Split(f.problems.Error(), "\n")
	}
	for _, w := range f.cfg.Relay.Warnings() {
		rep.Warnings = append(rep.Warnings, "relay."+w)
	}
	rep.Warnings = append(rep.Warnings, mirrorRouteWarnings(f.cfg.Accounts, f.cfg.Routing)...)
	out, err := showConfig(f.cfg)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.YAML = string(out)
	return rep
}

// showUnlimited prints the limits written as "unlimited" that way again
// rather than as the 0 they are held as.
func showUnlimited(shown any, keys []string) {
	relayMap, _ := shown.(map[string]any)["relay"].(map[string]any)
	limits, _ := relayMap["limits"].(map[string]any)
	for _, k := range keys {
		if limits != nil {
			limits[k] = "unlimited"
		}
	}
}

// redacted turns a configuration value into plain maps and lists keyed by
// the koanf names, replacing secrets (fields named secret or password, and
// inline passwords) with "(redacted)".
func redacted(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return redacted(v.Elem())
	case reflect.Struct:
		if s, ok := v.Interface().(fmt.Stringer); ok && v.Type().PkgPath() == "time" {
			return s.String()
		}
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			tag := strings.Split(f.Tag.Get("koanf"), ",")
			if !f.IsExported() || tag[0] == "-" {
				continue
			}
			val := redacted(v.Field(i))
			if len(tag) > 1 && tag[1] == "squash" {
				if sub, ok := val.(map[string]any); ok {
					for k, x := range sub {
						m[k] = x
					}
				}
				continue
			}
			name := tag[0]
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if isSecretKey(name) && !v.Field(i).IsZero() {
				val = "(redacted)"
			}
			m[name] = val
		}
		return m
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redacted(v.Index(i))
		}
		return out
	}
	if s, ok := v.Interface().(fmt.Stringer); ok && v.Type().PkgPath() != "" {
		return s.String()
	}
	return v.Interface()
}

func isSecretKey(name string) bool {
	return name == "secret" || name == "password"
}
