package convert

import (
	"archive/zip"
	"context"
	"io/fs"
	"path/filepath"
	"strings"
)

// MaxArchiveFiles bounds the files taken out of one archive.
const MaxArchiveFiles = 200

// File is one file taken out of an archive.
type File struct {
	Name string // its path inside the archive, with "/"
	Path string // where it is on disk, in the folder Unzip was given
	Size int64
}

// Unzip decrypts the password-protected ZIP in with password and takes
// its files out into dir (which must exist and be empty). 7-Zip does it
// (Debian's 7zip, which reads ZipCrypto and WinZip AES), in the sandbox
// like any converter, the password on its standard input, never on its
// command line where other processes could read it. Names without the
// UTF-8 flag are read as CP932 (Shift_JIS), as Japanese Windows writes
// them. Before anything runs, the archive's directory is read here and
// refused past MaxArchiveFiles entries or MaxOutput bytes in all; each
// file is bounded by RLIMIT_FSIZE as it is written, whatever the
// directory claimed. Only regular files come back: links and folders are
// left out. A wrong password is an *Error with CodePassword.
func (c *Converter) Unzip(ctx context.Context, in, password, dir string) ([]File, error) {
	zr, err := zip.OpenReader(in)
	if err != nil {
		return nil, failed(CodeFailed, "not a ZIP archive that can be read: %v", err)
	}
	var total uint64
	entries := 0
	encrypted := false
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		entries++
		total += f.UncompressedSize64
		encrypted = encrypted || f.Flags&1 != 0
	}
	zr.Close()
	switch {
	case entries > MaxArchiveFiles:
		return nil, failed(CodeTooLarge, "%d files, more than the limit of %d", entries, MaxArchiveFiles)
	case total > uint64(c.cfg.MaxOutput):
		return nil, failed(CodeTooLarge, "unpacks to %d bytes, more than the limit of %d", total, int64(c.cfg.MaxOutput))
	case !encrypted:
		// Nothing would be checked against the password: an archive
		// without encrypted entries opens with any.
		return nil, failed(CodeFailed, "the archive is not password-protected")
	case password == "" || strings.ContainsAny(password, "\r\n"):
		return nil, failed(CodePassword, "the password is empty or has a line break")
	}
	ctx, done, err := c.slot(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	out := filepath.Join(dir, "files")
	_, err = c.run(ctx, job{name: "7-Zip", prog: c.cfg.SevenZip, dir: dir, stdin: strings.NewReader(password + "\n"),
		args: []string{"x", "-y", "-bd", "-bso0", "-bsp0", "-mcp=932", "-o" + out, "--", in}})
	if e, ok := err.(*Error); ok && e.Code == CodeFailed && strings.Contains(e.Reason, "Wrong password") {
		return nil, failed(CodePassword, "the password is not the archive's")
	}
	if err != nil {
		return nil, err
	}
	var files []File
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		files = append(files, File{Name: filepath.ToSlash(rel), Path: p, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, failed(CodeFailed, "reading what 7-Zip took out: %v", err)
	}
	return files, nil
}
