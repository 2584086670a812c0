// Package safeio replaces files atomically and durably: write a temporary
// file in the same directory, fsync it, rename it over the target, fsync the
// directory. Every file sekisho owns is written through it.
//
// It lives under accounts because accounts is the innermost package of the
// module: everything else may import it, and it imports nothing of ours.
package safeio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNotDurable is returned, wrapped, when the new content is already in
// place (the rename happened) but the directory fsync failed: readers see
// the new file now, and a crash may still bring the old one back. Any
// other error means the old file (if any) is untouched.
var ErrNotDurable = errors.New("safeio: the file was replaced but the directory fsync failed; the change may not survive a crash")

// syncDir is SyncDir; tests replace it to make the directory fsync fail.
var syncDir = SyncDir

// WriteFile atomically replaces path with data. After it returns nil the new
// content survives a crash or power loss; after it returns an error the old
// file (if any) is untouched, unless the error wraps ErrNotDurable.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileFunc is WriteFile for content produced by a function, so large
// files are streamed through a buffer instead of built in memory.
func WriteFileFunc(path string, perm os.FileMode, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmpName, err)
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmpName, path); err != nil {
		return err
	}
	// From here the new file is in place: nothing to clean up, and an
	// error must not claim the old file is untouched.
	if serr := syncDir(dir); serr != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, serr)
	}
	return nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, serr)
	}
	return cerr
}

// Backup copies path to backup atomically. A missing source is not an error:
// there is nothing to keep yet.
func Backup(path, backup string, perm os.FileMode) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return WriteFileFunc(backup, perm, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}
