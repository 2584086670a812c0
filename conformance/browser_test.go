package conformance

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The console scenarios drive Debian's headless Chromium (the chromium
// package) with chromedp. One browser serves the whole run; each person
// gets a browser context of their own (their own cookies), each scenario
// its own tab.

var screenshots = flag.Bool("console.screenshots", false, "write the console scenarios' screenshots into docs/screenshots (for the README)")

// chromiumBin is Debian's Chromium.
const chromiumBin = "/usr/bin/chromium"

var shared struct {
	once   sync.Once
	ctx    context.Context // the browser (allocator and first target)
	cancel func()
	err    error
	dir    string
}

// startBrowser starts the one headless Chromium of the run, with an empty
// profile and nothing that would reach out to the network.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := chromiumBin
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			t.Skipf("Chromium is not installed (%s, none in PATH): apt-get install chromium to run the console scenarios", chromiumBin)
		}
		bin = p
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "sekisho-chromium-")
		if shared.err != nil {
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(shared.dir),
			chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
			chromedp.Flag("lang", "ja"), chromedp.WindowSize(1280, 900),
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		// The first Run starts the browser.
		if err := chromedp.Do(bctx); err != nil {
			bcancel()
			acancel()
			shared.err = fmt.Errorf("starting %s: %w", bin, err)
			return
		}
		shared.ctx = bctx
		shared.cancel = func() { bcancel(); acancel(); os.RemoveAll(shared.dir) }
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ctx
}

// stopBrowser ends the shared browser (TestMain).
func stopBrowser() {
	if shared.cancel != nil {
		shared.cancel()
	}
}

// person is one browser context: a person at their own terminal.
type person struct {
	t       *testing.T
	ctx     context.Context
	base    string // the console's http://host:port
	mu      sync.Mutex
	dialogs []string // JavaScript dialogs that opened: never expected
}

// newPerson opens a fresh browser context (no cookies) with one tab.
func newPerson(t *testing.T, base string) *person {
	t.Helper()
	b := startBrowser(t)
	p := &person{t: t, base: base}
	var ctx context.Context
	// A dialog (alert from injected script) blocks the page until it is
	// answered: record it and dismiss it, so the scenario goes on and
	// fails on it.
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext(), chromedp.WithListener(func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			p.mu.Lock()
			p.dialogs = append(p.dialogs, d.Message)
			p.mu.Unlock()
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
				return err
			}))
		}
	}))
	t.Cleanup(cancel)
	p.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	return p
}

// do runs browser steps with a generous deadline.
func (p *person) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, steps...); err != nil {
		code, herr := httpGet(p.base + "/signin")
		p.t.Fatalf("browser: %v after %v (at %s; the console answers GET /signin with %d %v)", err, time.Since(start).Round(time.Millisecond),
			p.location(), code, herr)
	}
}

func (p *person) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// open loads a console path and waits until the new document has loaded
// and shows its heading. It asks for the navigation and then looks at the
// document, rather than waiting for the load event, which a busy machine
// can deliver before anyone listens.
func (p *person) open(path string) {
	p.t.Helper()
	eval[bool](p, `(window.sekishoOld = true)`)
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, page.Navigate, page.NavigateParams{URL: p.base + path})
		if err == nil && res.ErrorText != "" {
			err = fmt.Errorf("navigating to %s: %s", path, res.ErrorText)
		}
		return err
	}))
	p.waitNewDocument("opening " + path)
}

// waitNewDocument waits until the document marked by window.sekishoOld is
// replaced by a loaded one with a heading.
func (p *person) waitNewDocument(what string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	// While the document changes, DevTools may answer that the target
	// navigated: that is "not yet", like the old document still there.
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		old, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sekishoOld === true || document.readyState !== "complete" || !document.querySelector("h1")`))
		cancel()
		if err == nil && !old {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no new page within %v (at %s)", what, waitTimeout, p.location())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text returns the visible text of the first element matching sel.
func (p *person) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		p.t.Fatalf("browser: text of %s: %v (at %s)", sel, err, p.location())
	}
	return s
}

// eval runs a DevTools expression (not page script: the page's CSP
// forbids script, DevTools is not a page).
func eval[T any](p *person, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// signIn signs in through the form and waits for the page after it.
func (p *person) signIn(user, password string) {
	p.t.Helper()
	p.open("/signin")
	p.do(chromedp.SendKeys(`input[name=user]`, user), chromedp.SendKeys(`input[name=password]`, password))
	p.submit(`form.signin button`)
	if strings.Contains(p.location(), "/signin") {
		p.t.Fatalf("signing in as %s failed: %s", user, p.text("main"))
	}
}

// submit clicks a form's submit button (sel selects the button) and waits
// until the next page has replaced this one.
func (p *person) submit(sel string) {
	p.t.Helper()
	// A mark on this document: gone once the answer's document is loaded.
	eval[bool](p, `(window.sekishoOld = true)`)
	p.do(chromedp.Click(sel))
	p.waitNewDocument("clicking " + sel)
}

// waitText reloads path until its main text contains want.
func (p *person) waitText(path, want string) string {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		p.open(path)
		got := p.text("main")
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s never showed %q; it shows:\n%s", path, want, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// noDialogs fails when any JavaScript dialog opened: content from a
// message ran as script.
func (p *person) noDialogs() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.dialogs) > 0 {
		p.t.Errorf("JavaScript ran in the console: dialogs %q", p.dialogs)
	}
}

// screenshot writes the page as docs/screenshots/NAME.png with
// -console.screenshots, otherwise into the test's folder (so the step is
// exercised on every run).
func (p *person) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := p.t.TempDir()
	if *screenshots {
		dir = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
