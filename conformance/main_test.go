package conformance

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var binFlag = flag.String("sekisho.bin", "", "use this sekisho binary instead of building ../cmd/sekisho")

// sekishoBin is the binary under test; binProblem says why there is none
// usable (set when the build failed or the binary lacks `serve`).
var (
	sekishoBin string
	binProblem string
)

func TestMain(m *testing.M) {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "sekisho-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	sekishoBin, binProblem = prepareBinary(tmp)
	code := m.Run()
	stopBrowser()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// prepareBinary builds cmd/sekisho (with -race when this test binary has
// it) and checks that it has the serve command.
func prepareBinary(tmp string) (bin, problem string) {
	bin = *binFlag
	if bin == "" {
		if err := touchSources(".."); err != nil {
			return "", err.Error()
		}
		bin = filepath.Join(tmp, "sekisho")
		args := []string{"build", "-o", bin}
		if raceBuild {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/sekisho")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Sprintf("go %v: %v\n%s", args, err, out.String())
		}
	}
	// The one explicit capability check: a binary without `serve` cannot
	// run any scenario.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--help")
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Sprintf("%s serve --help: %v (the binary lacks the serve command)\n%s", bin, err, out.String())
	}
	return bin, ""
}

// needBinary fails the test when the binary could not be prepared.
func needBinary(t *testing.T) {
	t.Helper()
	if binProblem != "" {
		t.Fatalf("no usable sekisho binary: %s", binProblem)
	}
}

// touchSources stats every source file of the module. The go command's test
// cache records the files a test opens or stats; without this, a change in
// the gateway's code would not invalidate a cached conformance run, since
// the binary is built by a child process the cache cannot see.
func touchSources(root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked: others work in this tree
		}
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name[0] == '.') {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(name) == ".go" || name == "go.mod" || name == "go.sum" || filepath.Ext(name) == ".yaml" {
			if _, err := os.Stat(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}
