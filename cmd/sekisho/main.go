// Command sekisho is the LGWAN SMTP gateway: one binary whose subcommands
// run the gateway, dry-run its rules and maintain its account mirror.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit statuses shared by every subcommand.
const (
	exitOK      = 0 // success
	exitFinding = 1 // a finding or a refusal: bad input, a safety refusal
	exitUsage   = 2 // the command line itself is wrong
)

// command is one subcommand. name may have several words ("accounts sync");
// the longest registered name that prefixes the arguments wins.
type command struct {
	name    string
	summary string
	// run gets the arguments after the name. It returns an exit status.
	run func(env *cmdEnv, args []string) int
}

// cmdEnv carries the standard streams, so tests can run commands in process.
type cmdEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// process: this is the program itself, not a test calling dispatch,
	// so serve may execute itself again (see withTimerSlack).
	process bool
}

var commands = map[string]*command{}

// register adds a subcommand; each subcommand's file calls it from init.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

func main() {
	env := &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, process: true}
	os.Exit(dispatch(env, os.Args[1:]))
}

func dispatch(env *cmdEnv, args []string) int {
	if len(args) > 1 && args[0] == "help" {
		// "help queue list" is "queue list --help".
		args = append(append([]string(nil), args[1:]...), "--help")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-V" {
		return commands["version"].run(env, args[1:])
	}
	args = subcommandFirst(args)
	var best *command
	bestWords := 0
	for name, c := range commands {
		words := strings.Fields(name)
		if len(words) > len(args) || len(words) <= bestWords {
			continue
		}
		match := true
		for i, w := range words {
			if args[i] != w {
				match = false
				break
			}
		}
		if match {
			best, bestWords = c, len(words)
		}
	}
	if best == nil && len(groupCommands(args[0])) > 0 {
		return groupHelp(env, args)
	}
	if best == nil {
		fmt.Fprintf(env.stderr, "sekisho: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage(env.stderr)
		return exitUsage
	}
	return best.run(env, args[bestWords:])
}

// groupCommands are the commands whose name starts with the word group
// ("queue" for queue list, queue show...), sorted.
func groupCommands(group string) []string {
	var names []string
	for n := range commands {
		if first, _, more := strings.Cut(n, " "); more && first == group {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// groupHelp answers a group named without one of its commands: its
// commands on standard output for "queue", "queue --help" and "queue
// help" (exit 0 when help was asked for, 2 when a command is missing),
// and an unknown command on standard error.
func groupHelp(env *cmdEnv, args []string) int {
	group := args[0]
	w, status := env.stdout, exitUsage
	switch {
	case len(args) == 1:
	case args[1] == "-h" || args[1] == "--help" || args[1] == "help":
		status = exitOK
	case strings.HasPrefix(args[1], "-"):
		fmt.Fprintf(env.stderr, "sekisho %s: name one of its commands before the options\n\n", group)
		w = env.stderr
	default:
		fmt.Fprintf(env.stderr, "sekisho: unknown command %q\n\n", group+" "+args[1])
		w = env.stderr
	}
	fmt.Fprintf(w, "usage: sekisho %s COMMAND [options]\n\ncommands:\n", group)
	for _, n := range groupCommands(group) {
		fmt.Fprintf(w, "  %-22s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'sekisho %s COMMAND --help' for a command's options.\n", group)
	return status
}

// subcommandFirst lets options come before a sub-subcommand, as in
// "queue -c FILE list": when args[0] names a group of commands and a later
// word completes one of them, that word moves up to follow args[0].
func subcommandFirst(args []string) []string {
	if len(args) < 3 || !strings.HasPrefix(args[1], "-") {
		return args
	}
	for j := 2; j < len(args); j++ {
		if args[j] == "--" {
			break
		}
		if _, ok := commands[args[0]+" "+args[j]]; ok {
			out := append([]string{args[0], args[j]}, args[1:j]...)
			return append(out, args[j+1:]...)
		}
	}
	return args
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sekisho COMMAND [options]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'sekisho COMMAND --help' for a command's options, 'sekisho --version' for the version.")
}

// newFlags builds a FlagSet whose --help prints the command's usage line and
// options, and whose errors go to stderr.
func newFlags(env *cmdEnv, name, argsUsage, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("sekisho "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		out := env.stdout
		fmt.Fprintf(out, "usage: sekisho %s %s\n\n%s\n\noptions:\n", name, argsUsage, strings.TrimSpace(help))
		fs.SetOutput(out)
		fs.PrintDefaults()
		fs.SetOutput(env.stderr)
	}
	return fs
}

// parseFlags parses flags and interleaved positional arguments (so
// "check a@b --json" works). It returns the positionals, or a non-negative
// exit status when the command should stop (help shown, usage error).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK
			}
			return nil, exitUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, -1
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), -1
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// stringList is a repeatable string flag (--rcpt a --rcpt b).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
