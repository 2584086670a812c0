package sanitize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"github.com/sekisho/sekisho/relay/sanitize/convert"
)

// Reconstruction (画像化): instead of removing an attachment or letting
// it through whole, the stage can give the recipient a copy that carries
// nothing active, made by relay/sanitize/convert. What becomes of each
// class of attachment is configured; the original always stays in the
// quarantine with the message, and the notice says what became of each
// file.

// Actions.
const (
	ActionKeep     = "keep"      // kept when the allow list allows it, removed otherwise (as without reconstruction)
	ActionRemove   = "remove"    // removed whatever the allow list says
	ActionImagePDF = "image-pdf" // rendered page by page to images, rebuilt as a PDF of them
	ActionText     = "text"      // its text extracted, as a .txt file
	ActionReencode = "reencode"  // an image decoded and encoded again, metadata dropped
	ActionUnlock   = "unlock"    // a password ZIP held until its recipient gives the password in the console
)

// Classes of attachment, by file name extension (and, for an encrypted
// archive, by content).
const (
	ClassOffice    = "office"
	ClassPDF       = "pdf"
	ClassImage     = "image"
	ClassEncrypted = "encrypted"
)

// Codes of the report for reconstruction.
const (
	CodeRemovedClass = "removed-by-class" // its class is configured to be removed
	CodeHeld         = "held"             // a password archive held for the console
)

// Reconstruct is relay.sanitize.reconstruct: an action a class.
type Reconstruct struct {
	// Office: doc, docx, docm, xls, xlsx, xlsm, ppt, pptx, pptm, odt,
	// ods, odp, rtf. keep, remove, image-pdf or text.
	Office string `koanf:"office"`
	// PDF: keep, remove, image-pdf or text.
	PDF string `koanf:"pdf"`
	// Image: JPEG, PNG, GIF, BMP, TIFF. keep, remove or reencode.
	Image string `koanf:"image"`
	// Encrypted: a password-protected ZIP. keep, remove or unlock.
	Encrypted string `koanf:"encrypted"`
}

// DefaultReconstruct keeps every class to the allow list: the stage
// behaves as it did before reconstruction existed.
func DefaultReconstruct() Reconstruct {
	return Reconstruct{Office: ActionKeep, PDF: ActionKeep, Image: ActionKeep, Encrypted: ActionKeep}
}

var classActions = map[string][]string{
	ClassOffice:    {ActionKeep, ActionRemove, ActionImagePDF, ActionText},
	ClassPDF:       {ActionKeep, ActionRemove, ActionImagePDF, ActionText},
	ClassImage:     {ActionKeep, ActionRemove, ActionReencode},
	ClassEncrypted: {ActionKeep, ActionRemove, ActionUnlock},
}

func (r Reconstruct) validate() []error {
	var errs []error
	for _, c := range []struct{ class, v string }{{ClassOffice, r.Office}, {ClassPDF, r.PDF}, {ClassImage, r.Image}, {ClassEncrypted, r.Encrypted}} {
		if ok := classActions[c.class]; !slices.Contains(ok, c.v) {
			errs = append(errs, fmt.Errorf("reconstruct.%s: %q is not an action for it (%s)", c.class, c.v, strings.Join(ok, ", ")))
		}
	}
	return errs
}

// Converts reports whether some class is converted: the stage then needs
// the converters.
func (r Reconstruct) Converts() bool {
	for _, a := range []string{r.Office, r.PDF, r.Image} {
		if converting(a) {
			return true
		}
	}
	return false
}

// action is what becomes of a class ("" class: keep).
func (r Reconstruct) action(class string) string {
	var a string
	switch class {
	case ClassOffice:
		a = r.Office
	case ClassPDF:
		a = r.PDF
	case ClassImage:
		a = r.Image
	case ClassEncrypted:
		a = r.Encrypted
	}
	if a == "" {
		return ActionKeep
	}
	return a
}

func converting(action string) bool {
	return action == ActionImagePDF || action == ActionText || action == ActionReencode
}

// classOf is the class a file name extension puts an attachment in; ""
// for none (the allow list decides). An encrypted ZIP is found by its
// content, later.
func classOf(ext string) string {
	switch {
	case ext == "pdf":
		return ClassPDF
	case slices.Contains(convert.OfficeExtensions, ext):
		return ClassOffice
	case slices.Contains([]string{"jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff"}, ext):
		return ClassImage
	}
	return ""
}

// outputName is the name the recipient sees for a converted file.
func outputName(name, ext, action string) (string, string) {
	stem := strings.TrimSuffix(name, name[len(name)-len(ext)-1:])
	switch action {
	case ActionImagePDF:
		return stem + ".pdf", "application/pdf"
	case ActionText:
		return stem + ".txt", "text/plain"
	}
	return name, ""
}

// errConvertShutdown: the conversions were cut short by the stage's
// context (the gateway stopping); the message is deferred, not sent
// without its files.
var errConvertShutdown = errors.New("conversions interrupted")

// convertAll runs the conversions the walk held files for, all at once
// (the converter's pool bounds how many really run), and turns each into
// a converted attachment or, when it failed, a removed one with the
// reason: one conversion that fails or overruns costs only its own file.
func (wk *walker) convertAll() {
	type result struct {
		out   *os.File
		pages int
		err   error
	}
	results := make([]result, len(wk.kept))
	ctx := wk.o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	var wg sync.WaitGroup
	for i, k := range wk.kept {
		if k.action == "" || wk.o.PlanOnly {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, pages, err := wk.convertOne(ctx, k)
			results[i] = result{out, pages, err}
		}()
	}
	wg.Wait()
	var kept []keptFile
	var repKept []Attachment
	for i, k := range wk.kept {
		att := wk.rep.Kept[i]
		if k.action == "" {
			kept, repKept = append(kept, k), append(repKept, att)
			continue
		}
		k.file.Close()
		removeFile(k.file)
		r := results[i]
		var ce *convert.Error
		switch {
		case wk.o.PlanOnly:
			att.As, att.AsType = outputName(att.Name, extension(att.Name), k.action)
			if att.AsType == "" {
				att.AsType = att.Detected
			}
			wk.rep.Converted = append(wk.rep.Converted, att)
			continue
		case r.err == nil:
		case errors.As(r.err, &ce):
			att.Reason, att.Code = "could not be converted: "+ce.Reason, ce.Code
			wk.rep.Removed = append(wk.rep.Removed, att)
			continue
		case ctx.Err() != nil:
			wk.ioErr = errConvertShutdown
			continue
		default:
			// Our own side failed (no room for the output): the message
			// waits for a retry rather than lose the file.
			wk.ioErr = fmt.Errorf("converting %s: %w", att.Path, r.err)
			continue
		}
		fi, err := r.out.Stat()
		if err != nil {
			wk.ioErr = err
			r.out.Close()
			removeFile(r.out)
			continue
		}
		att.As, att.AsType = outputName(att.Name, extension(att.Name), k.action)
		if att.AsType == "" {
			att.AsType = att.Detected
		}
		att.AsSize, att.Pages = fi.Size(), r.pages
		wk.rep.Converted = append(wk.rep.Converted, att)
		out := keptFile{att: att, file: r.out}
		out.att.Name, out.att.Detected, out.att.Size = att.As, att.AsType, att.AsSize
		if k.action == ActionText {
			out.charset = "utf-8"
		}
		kept = append(kept, out)
	}
	// On an error the message is not written: cleanup removes what was
	// made.
	wk.kept, wk.rep.Kept = kept, repKept
}

// convertOne converts one held file into a new temporary file.
func (wk *walker) convertOne(ctx context.Context, k keptFile) (*os.File, int, error) {
	c := wk.o.Convert
	if c == nil {
		return nil, 0, &convert.Error{Code: convert.CodeFailed, Reason: "no converter is configured for this use"}
	}
	out, err := os.CreateTemp(wk.o.TempDir, "sekisho-conv-*")
	if err != nil {
		return nil, 0, err
	}
	ext := extension(k.att.Name)
	var res convert.Result
	switch k.action {
	case ActionImagePDF:
		res, err = c.ImagePDF(ctx, k.file.Name(), ext, out)
	case ActionText:
		res, err = c.Text(ctx, k.file.Name(), ext, out)
	case ActionReencode:
		err = c.Reencode(ctx, k.file.Name(), k.att.Detected, out)
	}
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		out.Close()
		removeFile(out)
		return nil, 0, err
	}
	return out, res.Pages, nil
}

// ExtractPart writes the decoded content of the attachment at MIME part
// path of the message (as the Report numbers parts) to w and returns it
// as the walk saw it: how a held archive is taken out of its original.
func ExtractPart(msg io.Reader, path string, w io.Writer) (Attachment, error) {
	wk := &walker{o: Options{}.withDefaults(), rep: &Report{}, extract: w, extractPath: path}
	defer wk.cleanup()
	src := &readErr{r: msg}
	s := newSource(src)
	h := readHeader(s, topCaps, true)
	wk.entity(h, s, 0, "")
	if wk.ioErr != nil {
		return Attachment{}, wk.ioErr
	}
	if src.err != nil {
		// The part may have ended early: a cut archive is no archive.
		return Attachment{}, fmt.Errorf("reading the original: %w", src.err)
	}
	if wk.extracted == nil {
		return Attachment{}, fmt.Errorf("the message has no attachment at part %s", path)
	}
	return *wk.extracted, nil
}

// CheckPrograms checks that the programs the configured actions run are
// installed (found as configured, in PATH or by path): a missing one
// would remove every such attachment, saying only that its converter
// failed. Keys are relative to relay.sanitize.
func (c Config) CheckPrograms() error {
	if len(c.Rules) == 0 {
		return nil
	}
	r, cc := c.Reconstruct, c.Convert
	need := map[string]string{}
	add := func(why string, progs ...[2]string) {
		for _, p := range progs {
			if _, ok := need[p[0]]; !ok {
				need[p[0]] = p[1] + "|" + why
			}
		}
	}
	poppler := [][2]string{{"convert.pdfinfo", cc.Pdfinfo}, {"convert.prlimit", cc.Prlimit}}
	for _, a := range []struct{ class, action string }{{ClassOffice, r.Office}, {ClassPDF, r.PDF}} {
		why := "reconstruct." + a.class + ": " + a.action
		switch a.action {
		case ActionImagePDF:
			add(why, append(poppler, [2]string{"convert.pdftoppm", cc.Pdftoppm})...)
		case ActionText:
			add(why, append(poppler, [2]string{"convert.pdftotext", cc.Pdftotext})...)
		default:
			continue
		}
		if a.class == ClassOffice {
			add(why, [2]string{"convert.soffice", cc.Soffice})
		}
	}
	if r.Encrypted == ActionUnlock {
		add("reconstruct.encrypted: unlock", [2]string{"convert.seven_zip", cc.SevenZip}, [2]string{"convert.prlimit", cc.Prlimit})
	}
	var errs []error
	for key, v := range need {
		prog, why, _ := strings.Cut(v, "|")
		if _, err := exec.LookPath(prog); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not installed, and %s needs it", key, prog, why))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
