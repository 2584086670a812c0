//go:build !unix

package queue

import (
	"errors"
	"os"
	"time"
)

// The spool relies on flock and directory fsync: unix only.
var errUnsupported = errors.New("queue: the spool needs a unix system (flock, directory fsync)")

func lockSpool(dir string, wait time.Duration) (*os.File, error) { return nil, errUnsupported }
func tryLockSpool(dir string) (*os.File, error)                  { return nil, errUnsupported }
func unlockSpool(f *os.File)                                     {}

func fsSpace(dir string) (free, total int64, err error) { return 0, 0, errUnsupported }
