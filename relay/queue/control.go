package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// Command is an administrative action on queued messages (`sekisho queue
// retry|delete|hold|release`).
type Command struct {
	Op  string `json:"op"` // OpRetry, OpDelete, OpHold or OpRelease
	IDs []ID   `json:"ids,omitempty"`
	All bool   `json:"all,omitempty"` // retry only: every message with a deferred recipient
}

// Command operations.
const (
	OpRetry   = "retry"
	OpDelete  = "delete"
	OpHold    = "hold"
	OpRelease = "release"
)

// Result is what a Command did.
type Result struct {
	Done    []ID   `json:"done"`
	Missing []ID   `json:"missing,omitempty"` // no such message (already delivered, or a typo)
	Error   string `json:"error,omitempty"`
}

// Validate checks a command's shape.
func (c Command) Validate() error {
	switch c.Op {
	case OpRetry, OpDelete, OpHold, OpRelease:
	default:
		return fmt.Errorf("unknown queue operation %q (want retry, delete, hold or release)", c.Op)
	}
	if c.All && c.Op != OpRetry {
		return fmt.Errorf("%s: --all is only for retry", c.Op)
	}
	if c.All == (len(c.IDs) > 0) {
		return fmt.Errorf("%s: give message IDs or --all (retry only), not both or neither", c.Op)
	}
	for _, id := range c.IDs {
		if id == 0 {
			return fmt.Errorf("%s: message ID 0", c.Op)
		}
	}
	return nil
}

// maxCommandSize bounds a control file; a command lists IDs of 13 bytes.
const maxCommandSize = 4 << 20

// parseCommand reads a control file strictly.
func parseCommand(data []byte) (Command, error) {
	var c Command
	if len(data) > maxCommandSize {
		return c, fmt.Errorf("control command of %d bytes is too large", len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("control command: %w", err)
	}
	if dec.More() {
		return c, errors.New("control command: trailing data")
	}
	return c, c.Validate()
}

// Do applies a command and returns once its effect is durable.
func (q *Spool) Do(cmd Command) (Result, error) {
	if err := cmd.Validate(); err != nil {
		return Result{}, err
	}
	now := q.now()
	ids := cmd.IDs
	if cmd.All {
		q.mu.Lock()
		for id, e := range q.msgs {
			for _, st := range e.rcpts {
				if st.Status == Deferred {
					ids = append(ids, id)
					break
				}
			}
		}
		q.mu.Unlock()
	}
	build := map[string]func(e *entry, _ time.Time) (*record, error){
		OpRetry:   func(e *entry, _ time.Time) (*record, error) { return &record{typ: recRetry, id: e.id, at: now}, nil },
		OpDelete:  func(e *entry, _ time.Time) (*record, error) { return &record{typ: recDelete, id: e.id}, nil },
		OpHold:    func(e *entry, _ time.Time) (*record, error) { return &record{typ: recHold, id: e.id, held: true}, nil },
		OpRelease: func(e *entry, _ time.Time) (*record, error) { return &record{typ: recHold, id: e.id}, nil },
	}[cmd.Op]
	res := Result{Done: []ID{}}
	var errs []error
	for i, err := range q.changeEach(ids, build) {
		switch {
		case err == nil:
			res.Done = append(res.Done, ids[i])
		case errors.Is(err, ErrNotFound):
			res.Missing = append(res.Missing, ids[i])
		default:
			errs = append(errs, fmt.Errorf("%s: %w", ids[i], err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		res.Error = err.Error()
		return res, err
	}
	return res, nil
}

// Control applies cmd to the spool of cfg, safely against a running
// gateway: if the gateway holds the spool, the command is handed to it
// through a file in the control directory and its answer awaited (until
// ctx ends); otherwise the spool is opened, changed and closed here.
func Control(ctx context.Context, cfg Config, cmd Command) (Result, error) {
	if err := cmd.Validate(); err != nil {
		return Result{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("queue configuration: %w", err)
	}
	if _, err := os.Stat(cfg.Dir); err != nil {
		return Result{}, fmt.Errorf("queue: spool directory: %w", err)
	}
	lock, err := tryLockSpool(cfg.Dir)
	if err == nil {
		if err := prepareDir(cfg.Dir); err != nil {
			unlockSpool(lock)
			return Result{}, err
		}
		q, err := openLocked(cfg, buildOptions(nil), lock)
		if err != nil {
			return Result{}, err
		}
		res, err := q.Do(cmd)
		if cerr := q.Close(); err == nil && cerr != nil {
			err = cerr
		}
		return res, err
	}
	if !errors.Is(err, ErrLocked) {
		return Result{}, err
	}
	return sendControl(ctx, cfg.Dir, cmd)
}

// sendControl writes the command for the running gateway and waits for
// its reply. If none comes before ctx ends, the command is withdrawn; if
// the gateway has already taken it, a little more time is given.
func sendControl(ctx context.Context, dir string, cmd Command) (Result, error) {
	data, err := json.Marshal(cmd)
	if err != nil {
		return Result{}, err
	}
	return handOver(ctx, dir, ".cmd", data)
}

// handOver writes a control file with the extension ext (.cmd, .enq) and
// waits for the gateway's reply.
func handOver(ctx context.Context, dir, ext string, data []byte) (Result, error) {
	cdir := filepath.Join(dir, ctlDir)
	base := filepath.Join(cdir, fmt.Sprintf("%d-%d", time.Now().UnixNano(), os.Getpid()))
	// A command the directory fsync could not make durable is still in
	// place for the running gateway, which reads it live: wait for it.
	if err := safeio.WriteFile(base+ext, data, 0o640); err != nil && !errors.Is(err, safeio.ErrNotDurable) {
		return Result{}, fmt.Errorf("queue: handing the command to the running gateway: %w", err)
	}
	safeio.ChownLikeParent(base + ext)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var grace <-chan time.Time
	done := ctx.Done()
	for {
		if b, err := os.ReadFile(base + ".reply"); err == nil {
			os.Remove(base + ".reply")
			var res Result
			if err := json.Unmarshal(b, &res); err != nil {
				return Result{}, fmt.Errorf("queue: the gateway's reply: %w", err)
			}
			if res.Error != "" {
				return res, errors.New(res.Error)
			}
			return res, nil
		}
		select {
		case <-tick.C:
		case <-done:
			if os.Remove(base+ext) == nil {
				return Result{}, fmt.Errorf("queue: the running gateway did not take the command (%v); withdrawn, nothing changed", ctx.Err())
			}
			done, grace = nil, time.After(10*time.Second)
		case <-grace:
			return Result{}, errors.New("queue: the running gateway took the command but did not answer; check with `sekisho queue list`")
		}
	}
}

// processControl runs the commands `sekisho queue` left for us. A command
// is claimed by renaming it, so a command the CLI withdraws on timeout is
// either run here or not at all. A .work file left by a crash is run again
// (every operation is idempotent).
func (q *Spool) processControl() {
	dir := filepath.Join(q.cfg.Dir, ctlDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range ents {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, "."):
		case strings.HasSuffix(name, ".cmd"):
			base := filepath.Join(dir, strings.TrimSuffix(name, ".cmd"))
			if os.Rename(base+".cmd", base+".work") == nil {
				q.runControl(base)
			}
		case strings.HasSuffix(name, ".work"):
			q.runControl(filepath.Join(dir, strings.TrimSuffix(name, ".work")))
		case strings.HasSuffix(name, ".enq"), strings.HasSuffix(name, ".enqwork"):
			q.runEnqueue(filepath.Join(dir, name)) // control_enqueue.go
		case strings.HasSuffix(name, ".reply"):
			// A reply nobody collected (the CLI was interrupted).
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
				os.Remove(filepath.Join(dir, name))
			}
		}
	}
}

func (q *Spool) runControl(base string) {
	var res Result
	data, err := os.ReadFile(base + ".work")
	var cmd Command
	if err == nil {
		cmd, err = parseCommand(data)
	}
	if err == nil {
		res, err = q.Do(cmd)
	}
	if err != nil {
		res.Error = err.Error()
	}
	q.log.Info("queue: control command", "op", cmd.Op, "all", cmd.All, "done", len(res.Done),
		"missing", len(res.Missing), "error", res.Error)
	out, _ := json.Marshal(res)
	if err := safeio.WriteFile(base+".reply", out, 0o640); err != nil && !errors.Is(err, safeio.ErrNotDurable) {
		q.log.Warn("queue: writing a control reply", "path", base+".reply", "err", err)
		return
	}
	safeio.ChownLikeParent(base + ".reply")
	os.Remove(base + ".work")
}
