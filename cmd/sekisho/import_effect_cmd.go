package main

import (
	"fmt"
	"os"

	"github.com/sekisho/sekisho/relay/guard"
)

func init() {
	register(&command{
		name:    "import effect-dat",
		summary: "convert an E-Post effect.dat to relay guard rules",
		run:     runImportEffectDat,
	})
}

func runImportEffectDat(env *cmdEnv, args []string) int {
	fs := newFlags(env, "import effect-dat", "FILE", `
Converts E-Post's relay restriction file (effect.dat, UTF-8 or Shift_JIS) to
relay.guard rules in the same order, printed on standard output as a whole
relay: guard: rules: block that pastes into a configuration as it is, with
each source line quoted above its rule. Every line that cannot be converted
faithfully is listed on standard error as FILE:LINE: reason; the exit status
is then 1. Nothing is written to the configuration: review the rules, paste
the block (or merge its guard: into an existing relay: section) and run
'sekisho config check' and 'sekisho relay test'.`)
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	im := guard.ImportEffectDat(data, pos[0])
	if err := im.WriteYAML(env.stdout); err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitFinding
	}
	for _, p := range im.Problems {
		fmt.Fprintf(env.stderr, "%s:%d: %s (line: %s)\n", pos[0], p.Line, p.Reason, p.Text)
	}
	if len(im.Problems) > 0 {
		fmt.Fprintf(env.stderr, "%s: %d line(s) not converted\n", pos[0], len(im.Problems))
		return exitFinding
	}
	return exitOK
}
