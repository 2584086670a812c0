package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
)

func init() {
	register(&command{name: "version", summary: "print the version, the commit and the Go version of this binary", run: runVersion})
}

// buildVersion is what the binary knows about itself, from the build
// information the Go toolchain embeds.
type buildVersion struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func readVersion(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: bi.Main.Path, Version: bi.Main.Version, Go: bi.GoVersion}
	if v.Version == "" {
		// go test binaries carry no main module version.
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) String() string {
	s := "sekisho " + v.Version
	if v.Commit != "" {
		s += " commit " + v.Commit
		if v.Modified {
			s += " (modified)"
		}
		if v.Time != "" {
			s += " " + v.Time
		}
	}
	return s + " " + v.Go
}

func runVersion(env *cmdEnv, args []string) int {
	fs := newFlags(env, "version", "[--json]", `
Prints the module version ("(devel)" for a build from a work tree), the
commit it was built from, whether the work tree had changes, and the Go
version. "go install github.com/sekisho/sekisho/cmd/sekisho@v1.2.3" gives
v1.2.3; "go build" in a clone gives the commit.`)
	asJSON := fs.Bool("json", false, "one JSON document")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "sekisho version: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(env.stderr, "sekisho version: this binary has no build information")
		return exitFinding
	}
	v := readVersion(bi)
	if *asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(env.stdout, string(b))
		return exitOK
	}
	fmt.Fprintln(env.stdout, v)
	return exitOK
}
