//go:build !linux

package queue

import "os"

// fdatasync falls back to a full fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// writeBuffers writes bufs in order at f's position, one write each.
func writeBuffers(f *os.File, bufs [][]byte) (int, error) {
	total := 0
	for _, b := range bufs {
		n, err := f.Write(b)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
