package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/convert"
)

func init() {
	register(&command{name: "sanitize test", summary: "dry-run the sanitize stage (無害化) on a message file", run: runSanitizeTest})
}

// dryRunID stands for the release ID the live stage would assign.
const dryRunID = "00000000-dryrun0000"

func runSanitizeTest(env *cmdEnv, args []string) int {
	fs := newFlags(env, "sanitize test", "[-c FILE] --message FILE.eml [--text] [--json] [--out DIR]", `
Runs the sanitize stage of the configuration (relay.sanitize) on a message
file, exactly as the gateway would, converters included, and prints the
sanitized message in its wire form, then each attachment's class, action
and result (on standard error). --text prints the header and the decoded
text instead of the wire form. --json prints one JSON object: the report
and the message. --out DIR writes the attachments the recipient would
get (kept, and the files rebuilt from the originals) into DIR, for
inspection. The message file is read with "-" for standard input. Exit
status 1 when nothing of the message can be shown (no header and binary
content: the gateway would deliver only a notice and quarantine it).`)
	cfgPath := fs.String("c", "", "configuration `file`")
	msgPath := fs.String("message", "", "the message `file` (.eml), - for standard input")
	asText := fs.Bool("text", false, "print the header and decoded text")
	asJSON := fs.Bool("json", false, "print a JSON object")
	outDir := fs.String("out", "", "write the attachments delivered into `folder`")
	pos, st := parseFlags(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 || *msgPath == "" {
		fmt.Fprintln(env.stderr, "sekisho sanitize test: give the message with --message FILE")
		return exitUsage
	}
	cfg, ok := env.config(*cfgPath)
	if !ok {
		return exitFinding
	}
	var in io.Reader = env.stdin
	if *msgPath != "-" {
		f, err := os.Open(*msgPath)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitFinding
		}
		defer f.Close()
		in = f
	}
	sc := cfg.Relay.Sanitize
	opts := sc.Options(dryRunID, time.Now().Add(sc.Quarantine.Retention))
	opts.TempDir = "" // the dry run touches nothing of the gateway's
	if sc.Reconstruct.Converts() {
		cc := sc.Convert
		cc.TempDir = ""
		opts.Convert = convert.New(cc, nil)
		opts.Convert.Warn = func(msg string) { fmt.Fprintln(env.stderr, "warning:", msg) }
	}
	var out bytes.Buffer
	rep, err := sanitize.Message(in, &out, opts)
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", *msgPath, err)
		return exitFinding
	}
	status := exitOK
	if rep.Unparseable {
		status = exitFinding
	}
	if *outDir != "" {
		if err := writeAttachments(*outDir, out.Bytes()); err != nil {
			fmt.Fprintf(env.stderr, "--out %s: %v\n", *outDir, err)
			return exitFinding
		}
	}
	if *asJSON {
		if st := printJSON(env, struct {
			Report  *sanitize.Report `json:"report"`
			Message string           `json:"message"`
		}{rep, out.String()}); st != exitOK {
			return st
		}
		return status
	}
	if *asText {
		if err := printDecoded(env.stdout, out.Bytes()); err != nil {
			fmt.Fprintln(env.stderr, "sekisho sanitize test:", err)
			return exitFinding
		}
	} else {
		env.stdout.Write(out.Bytes())
	}
	printReport(env.stderr, rep)
	return status
}

// printDecoded shows a message's header as written and each text part
// decoded to UTF-8; other parts by type and size.
func printDecoded(w io.Writer, data []byte) error {
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		w.Write(bytes.ReplaceAll(data[:i+2], []byte("\r\n"), []byte("\n")))
	}
	m, err := message.Read(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return m.Walk(func(_ []int, e *message.Entity, err error) error {
		if err != nil {
			return err
		}
		mt, params, _ := e.Header.ContentType()
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		body, err := io.ReadAll(e.Body)
		if err != nil {
			return err
		}
		if mt == "text/plain" {
			fmt.Fprintf(w, "\n")
			w.Write(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")))
			return nil
		}
		fmt.Fprintf(w, "\n[%s %q, %d bytes]\n", mt, params["name"], len(body))
		return nil
	})
}

func printReport(w io.Writer, rep *sanitize.Report) {
	fmt.Fprintf(w, "-- %s: %s\n", rep.Result(), rep.Summary(""))
	if rep.Unparseable {
		fmt.Fprintf(w, "withheld: %s (the recipient gets only a notice; the original is quarantined)\n", rep.ParseError)
	}
	for _, a := range rep.Removed {
		fmt.Fprintf(w, "removed  %-6s %s (%d bytes, %s, declared %s): %s [%s]\n", a.Path, a.Name, a.Size, a.Detected, a.Declared, a.Reason, a.Code)
	}
	for _, d := range rep.HeaderDropped {
		fmt.Fprintf(w, "header   %q left out\n", d)
	}
	for _, a := range rep.Kept {
		fmt.Fprintf(w, "kept     %-6s %s (%d bytes, %s)%s\n", a.Path, a.Name, a.Size, a.Detected, classText(a))
	}
	for _, a := range rep.Converted {
		pages := ""
		if a.Pages > 0 {
			pages = fmt.Sprintf(", %d pages", a.Pages)
		}
		fmt.Fprintf(w, "converted %-5s %s (%d bytes, %s)%s -> %s (%d bytes, %s%s)\n", a.Path, a.Name, a.Size, a.Detected,
			classText(a), a.As, a.AsSize, a.AsType, pages)
	}
	for _, a := range rep.Held {
		fmt.Fprintf(w, "held     %-6s %s (%d bytes, %s)%s: %s\n", a.Path, a.Name, a.Size, a.Detected, classText(a), a.Reason)
	}
}

// classText shows an attachment's class and the action configured for
// it.
func classText(a sanitize.Attachment) string {
	if a.Class == "" {
		return ""
	}
	return fmt.Sprintf(" class=%s action=%s", a.Class, a.Action)
}

// writeAttachments writes each attachment of the sanitized message into
// dir under its own name (made unique), for inspection.
func writeAttachments(dir string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m, err := message.Read(bytes.NewReader(data))
	if err != nil {
		return err
	}
	seen := map[string]int{}
	return m.Walk(func(_ []int, e *message.Entity, err error) error {
		if err != nil {
			return err
		}
		_, params, _ := e.Header.ContentDisposition()
		name := filepath.Base(filepath.Clean("/" + params["filename"]))
		if name == "/" || name == "." {
			return nil
		}
		seen[name]++
		if n := seen[name]; n > 1 {
			ext := filepath.Ext(name)
			name = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(name, ext), n, ext)
		}
		body, err := io.ReadAll(e.Body)
		if err != nil {
			return err
		}
		return safeio.WriteFile(filepath.Join(dir, name), body, 0o644)
	})
}
