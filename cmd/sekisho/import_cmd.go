package main

import (
	"fmt"
	"os"

	"github.com/sekisho/sekisho/routing"
)

func init() {
	register(&command{
		name:    "import gateway-dat",
		summary: "convert an E-Post gateway.dat into routing routes (YAML on stdout)",
		run:     runImportGatewayDat,
	})
}

func runImportGatewayDat(env *cmdEnv, args []string) int {
	fs := newFlags(env, "import gateway-dat", "FILE", `
Converts an E-Post gateway.dat ("domain, host[, port]" lines, comment lines
starting with ; or ', "*" and "*.abc.jp" entries, UTF-8 or Shift_JIS) into a routing
section on stdout. Every line that cannot be converted is listed on stderr
as FILE:LINE: reason, and the exit status is then 1. Check the result with
'sekisho config check' and 'sekisho route test' before using it.`)
	files, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(files) != 1 {
		fmt.Fprintln(env.stderr, "sekisho import gateway-dat: give exactly one FILE")
		return exitUsage
	}
	f, err := os.Open(files[0])
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	defer f.Close()
	g, err := routing.ParseGatewayDat(f, files[0])
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	if err := g.WriteYAML(env.stdout); err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	for _, p := range g.Problems {
		fmt.Fprintln(env.stderr, p)
	}
	if len(g.Problems) > 0 {
		fmt.Fprintf(env.stderr, "%d line(s) not converted\n", len(g.Problems))
		return exitFinding
	}
	return exitOK
}
