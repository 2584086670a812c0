package main

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sekisho/sekisho/relay"
)

func init() {
	register(&command{
		name:    "config check",
		summary: "check a configuration file and list every problem",
		run:     runConfigCheck,
	})
}

func runConfigCheck(env *cmdEnv, args []string) int {
	fs := newFlags(env, "config check", "[-c FILE] [--show]", `
Reads the configuration (the embedded quickstart without -c), applies the
SEKISHO_* environment overrides, and lists every problem as
FILE: key.path: reason. Then it loads what the configuration refers to —
the accounts directory, rewrite tables, routes and relay rules — as serve
would. Exit 1 if there is any problem.
With --show it prints the effective configuration (defaults, file and
environment merged) with secrets redacted, like postconf -n.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	show := fs.Bool("show", false, "print the effective configuration, secrets redacted")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	if err := relay.Check(cfg.sections()); err != nil {
		for _, e := range flatten(err) {
			fmt.Fprintf(env.stderr, "%s: %v\n", cfg.Source, e)
		}
		return exitFinding
	}
	if *show {
		out, err := yaml.Marshal(redacted(reflect.ValueOf(*cfg)))
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
