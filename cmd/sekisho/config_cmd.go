package main

import "fmt"

func init() {
	register(&command{
		name:    "config check",
		summary: "check a configuration file and list every problem",
		run:     runConfigCheck,
	})
}

func runConfigCheck(env *cmdEnv, args []string) int {
	fs := newFlags(env, "config check", "[-c FILE]", `
Reads the configuration (the embedded quickstart without -c), applies the
SEKISHO_* environment overrides, and lists every problem as
FILE: key.path: reason. Exit 1 if there is any.`)
	cfgPath := fs.String("c", "", "configuration `file`")
	if _, st := parseFlags(fs, args); st >= 0 {
		return st
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	fmt.Fprintf(env.stdout, "%s: ok\n", cfg.Source)
	return exitOK
}
