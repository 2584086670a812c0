package main

import "fmt"

// configArg takes the configuration file of a command that reads one:
// from -c or from the one positional argument ("sekisho config check
// FILE"). A positional argument is never ignored: an administrator told
// "ok" must have had that very file read. It returns the path (empty for
// the embedded quickstart) or an exit status.
func configArg(env *cmdEnv, name, flagPath string, pos []string) (string, int) {
	switch {
	case len(pos) > 1:
		fmt.Fprintf(env.stderr, "sekisho %s: unexpected argument %q (give one configuration file)\n", name, pos[1])
		return "", exitUsage
	case len(pos) == 1 && flagPath != "" && flagPath != pos[0]:
		fmt.Fprintf(env.stderr, "sekisho %s: two configuration files: -c %s and %s\n", name, flagPath, pos[0])
		return "", exitUsage
	case len(pos) == 1:
		return pos[0], -1
	}
	return flagPath, -1
}
