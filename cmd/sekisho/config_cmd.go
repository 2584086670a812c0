package main

import (
	"fmt"
	"os"
	"reflect"
	"strings"

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
	cfg, err := loadConfigLenient(*cfgPath)
	if cfg == nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	p, _ := err.(*configProblems)
	if p == nil {
		p = &configProblems{source: cfg.Source}
		if *cfgPath != "" {
			p.data, _ = os.ReadFile(*cfgPath)
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
	if len(p.problems) > 0 {
		fmt.Fprintln(env.stderr, p.Error())
	}
	var ws []string
	for _, f := range warnings {
		ws = append(ws, f.String())
	}
	for _, w := range locateAll(cfg.Source, p.data, ws) {
		fmt.Fprintln(env.stderr, "warning: "+w)
	}
	if len(p.problems) > 0 || (*strict && len(warnings) > 0) {
		return exitFinding
	}
	for _, w := range cfg.Relay.Warnings() {
		fmt.Fprintf(env.stderr, "%s: warning: relay.%s\n", cfg.Source, w)
	}
	if *show {
		shown := redacted(reflect.ValueOf(*cfg))
		showUnlimited(shown, cfg.Relay.Limits.Unlimited)
		out, err := yaml.Marshal(shown)
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
