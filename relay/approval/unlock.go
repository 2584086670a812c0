package approval

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/relay/sanitize/convert"
	"github.com/sekisho/sekisho/relay/sanitize/quarantine"
	"github.com/sekisho/sekisho/relay/store"
	"github.com/sekisho/sekisho/rewrite"
)

// MaxUnlockFailures is how many wrong passwords lock a held archive, as
// five wrong sign-ins lock an account: past it only an administrator
// unlocks it.
const MaxUnlockFailures = 5

// UnlockExecutor opens the password archives the sanitize stage held
// (reconstruct.encrypted: unlock) on the gateway that keeps their
// original. Open checks a password the recipient typed in the console by
// decrypting the archive (7-Zip in the converters' sandbox) into a
// folder beside the quarantine; the request it is followed by (KindUnlock,
// approved at once) is carried out by Execute: each file rebuilt by the
// stage's rules, as a follow-up message to that recipient. The password
// is never stored: only the decrypted files wait, in a 0700 folder, until
// the follow-up is queued.
type UnlockExecutor struct {
	Quarantine *quarantine.Store
	// Stage returns the running sanitize stage (its rules and
	// converters); nil when relay.sanitize is off.
	Stage   func() *sanitize.Stage
	Enqueue func(env queue.Envelope, data io.Reader) (queue.ID, error)
	// Dir holds the decrypted files between Open and Execute.
	Dir        string
	Hostname   string
	Postmaster string
	Log        *slog.Logger
}

// errNotHeld: the part is not an archive the stage held.
var errNotHeld = errors.New("no held archive at that part")

// Held returns the archive held at part of original id.
func (e *UnlockExecutor) Held(id, part string) (sanitize.Attachment, error) {
	ent, err := e.Quarantine.Get(id)
	if err != nil {
		return sanitize.Attachment{}, err
	}
	rep, err := sanitize.EntryReport(ent)
	if err != nil || rep == nil {
		return sanitize.Attachment{}, errNotHeld
	}
	for _, a := range rep.Held {
		if a.Path == part {
			return a, nil
		}
	}
	return sanitize.Attachment{}, errNotHeld
}

func (e *UnlockExecutor) folder(id, part string) string {
	return filepath.Join(e.Dir, id+"-"+strings.ReplaceAll(part, ".", "_"))
}

// Open tries password on the archive at part of original id; when it is
// right, the files wait for Execute and their number is returned. A
// wrong password is a *convert.Error with convert.CodePassword.
func (e *UnlockExecutor) Open(ctx context.Context, id, part, password string) (int, error) {
	if _, err := e.Held(id, part); err != nil {
		return 0, err
	}
	st := e.Stage()
	if st == nil || st.Converter() == nil {
		return 0, errors.New("this gateway opens no archives (relay.sanitize.reconstruct.encrypted is not unlock)")
	}
	work, err := os.MkdirTemp(e.Dir, ".open-*")
	if err != nil {
		if err = os.MkdirAll(e.Dir, 0o700); err == nil {
			work, err = os.MkdirTemp(e.Dir, ".open-*")
		}
		if err != nil {
			return 0, err
		}
	}
	defer os.RemoveAll(work)
	zipPath := filepath.Join(work, "archive.zip")
	if err := e.extract(id, part, zipPath); err != nil {
		return 0, err
	}
	files, err := st.Converter().Unzip(ctx, zipPath, password, work)
	if err != nil {
		return 0, err
	}
	os.Remove(zipPath)
	dst := e.folder(id, part)
	os.RemoveAll(dst) // an earlier opening whose follow-up was never sent
	if err := os.Rename(filepath.Join(work, "files"), dst); err != nil {
		return 0, err
	}
	return len(files), nil
}

// extract writes the archive's bytes out of the original.
func (e *UnlockExecutor) extract(id, part, to string) error {
	rc, err := e.Quarantine.Open(id)
	if err != nil {
		return err
	}
	defer rc.Close()
	return safeio.WriteFileFunc(to, 0o600, func(w io.Writer) error {
		a, err := sanitize.ExtractPart(rc, part, w)
		if err == nil && a.Detected != sanitize.TypeEncrypted {
			err = fmt.Errorf("part %s is %s, not a password archive", part, a.Detected)
		}
		return err
	})
}

// queuedMark is written once the follow-up is queued: a run a crash
// interrupted finds it and does not send twice.
const queuedMark = ".queued"

// Execute sends the files Open took out to the request's recipient,
// each rebuilt by the stage's rules, as one follow-up message; it returns
// its queue ID.
func (e *UnlockExecutor) Execute(ctx context.Context, r store.Request, started time.Time) (string, error) {
	part := r.Reason
	dir := e.folder(r.Item, part)
	if b, err := os.ReadFile(filepath.Join(dir, queuedMark)); err == nil {
		return string(b), nil
	}
	held, err := e.Held(r.Item, part)
	if err != nil {
		return "", err
	}
	st := e.Stage()
	if st == nil {
		return "", errors.New("relay.sanitize is off: the files cannot be rebuilt")
	}
	ent, err := e.Quarantine.Get(r.Item)
	if err != nil {
		return "", err
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != queuedMark {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("the opened archive's files are gone (open it again): %w", err)
	}
	if len(r.Recipients) != 1 {
		return "", errors.New("a follow-up goes to one recipient")
	}
	to := r.Recipients[0]
	built, err := os.CreateTemp(e.Dir, ".followup-*")
	if err != nil {
		return "", err
	}
	defer func() { built.Close(); os.Remove(built.Name()) }()
	if err := e.build(built, dir, files, held, ent.Subject, to); err != nil {
		return "", err
	}
	if _, err := built.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	out, err := os.CreateTemp(e.Dir, ".sanitized-*")
	if err != nil {
		return "", err
	}
	defer func() { out.Close(); os.Remove(out.Name()) }()
	opts := st.Options(ctx, r.Item, ent.Expires)
	opts.TempDir = e.Dir
	// A follow-up is not kept in the quarantine itself: an archive inside
	// the archive cannot be held again, and is removed.
	opts.Reconstruct.Encrypted = sanitize.ActionRemove
	opts.ConsoleURL = ""
	rep, err := sanitize.Message(bufio.NewReader(built), out, opts)
	if err != nil {
		return "", err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	fi, err := out.Stat()
	if err != nil {
		return "", err
	}
	env := queue.Envelope{From: "", Rcpts: []queue.Recipient{{Addr: to, OrigAddr: to}}, ReceivedAt: time.Now(),
		Source: rewrite.SourceInner, Helo: e.Hostname, Size: fi.Size()}
	qid, err := e.Enqueue(env, out)
	if err != nil {
		return "", err
	}
	if err := safeio.WriteFile(filepath.Join(dir, queuedMark), []byte(qid.String()), 0o600); err != nil {
		e.Log.Warn("the follow-up is queued but not marked: a crash now would send it again", "kind", "sanitize", "release_id", r.Item, "error", err)
	}
	for _, f := range files {
		os.Remove(f)
	}
	e.Log.Info("password archive opened and sent on", "kind", "sanitize", "release_id", r.Item, "part", part, "id", qid.String(),
		"to", to, "result", rep.Result()+": "+rep.Summary(r.Item))
	return qid.String(), nil
}

// build writes the follow-up before it is sanitized: a short text and
// each file of the archive attached as it came out.
func (e *UnlockExecutor) build(w io.Writer, dir string, files []string, held sanitize.Attachment, subject, to string) error {
	bw := bufio.NewWriter(w)
	now := time.Now()
	boundary := "=_sekisho_" + randHex() + randHex()
	subj := "パスワード付きファイルの中身 / Files from the password-protected archive: " + held.Name
	if subject != "" {
		subj += " (" + subject + ")"
	}
	writeHeader(bw, e.Postmaster, to, subj, e.Hostname, now)
	fmt.Fprintf(bw, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(bw, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary)
	text := "パスワード付きファイル " + held.Name + " の中身を、安全な形式に作り直してお送りします。\r\n" +
		"The files of the password-protected archive " + held.Name + ", rebuilt in a safe form.\r\n"
	sanitize.WriteBase64(bw, strings.NewReader(text))
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		name := path.Base(filepath.ToSlash(rel))
		fmt.Fprintf(bw, "--%s\r\nContent-Type: application/octet-stream\r\n", boundary)
		fmt.Fprintf(bw, "Content-Disposition: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		in, err := os.Open(f)
		if err != nil {
			return err
		}
		err = sanitize.WriteBase64(bw, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "--%s--\r\n", boundary)
	return bw.Flush()
}

// IsWrongPassword reports whether err is a wrong password.
func IsWrongPassword(err error) bool {
	var ce *convert.Error
	return errors.As(err, &ce) && ce.Code == convert.CodePassword
}

// Sweep removes what an opening left beside the quarantine once its
// original is gone (purged): the files of an archive opened but never
// sent, the marks of those sent; and work files a crash left, after an
// hour. The gateway's daily maintenance calls it.
func (e *UnlockExecutor) Sweep(now time.Time) (int, error) {
	ents, err := os.ReadDir(e.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, de := range ents {
		p := filepath.Join(e.Dir, de.Name())
		if strings.HasPrefix(de.Name(), ".") {
			if fi, err := de.Info(); err == nil && now.Sub(fi.ModTime()) > time.Hour {
				errs = append(errs, os.RemoveAll(p))
				n++
			}
			continue
		}
		// <release ID>-<part>, the ID itself being DATE-HEX.
		f := strings.SplitN(de.Name(), "-", 3)
		if len(f) < 3 {
			continue
		}
		if _, err := e.Quarantine.Get(f[0] + "-" + f[1]); errors.Is(err, quarantine.ErrNotFound) {
			errs = append(errs, os.RemoveAll(p))
			n++
		}
	}
	return n, errors.Join(errs...)
}
