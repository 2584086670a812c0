package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sekisho/sekisho/accounts/safeio"
)

// enqueueRequest is a message handed to the running gateway to queue (a
// .enq file in the control folder): `sekisho quarantine release` uses it.
type enqueueRequest struct {
	Envelope Envelope `json:"envelope"`
	Data     []byte   `json:"data"` // base64 in JSON
}

// EnqueueControl queues a message in the spool of cfg, safely against a
// running gateway, as Control does for commands: if the spool is free it
// is opened, the message queued and the spool closed here; otherwise the
// message is handed to the gateway through the control folder and its
// answer awaited until ctx ends (then the request is withdrawn if the
// gateway has not taken it). It returns the new message's ID.
func EnqueueControl(ctx context.Context, cfg Config, env Envelope, data []byte) (ID, error) {
	if len(env.Rcpts) == 0 {
		return 0, errors.New("queue: a message needs at least one recipient")
	}
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("queue configuration: %w", err)
	}
	// Unlike a command, a message may be the first of a new spool.
	if _, err := os.Stat(cfg.Dir); errors.Is(err, fs.ErrNotExist) {
		if err := prepareDir(cfg.Dir); err != nil {
			return 0, err
		}
	} else if err != nil {
		return 0, fmt.Errorf("queue: spool directory: %w", err)
	}
	lock, err := tryLockSpool(cfg.Dir)
	if err == nil {
		if err := prepareDir(cfg.Dir); err != nil {
			unlockSpool(lock)
			return 0, err
		}
		q, err := openLocked(cfg, buildOptions(nil), lock)
		if err != nil {
			return 0, err
		}
		id, err := q.Enqueue(env, bytes.NewReader(data))
		if cerr := q.Close(); err == nil && cerr != nil {
			err = cerr
		}
		return id, err
	}
	if !errors.Is(err, ErrLocked) {
		return 0, err
	}
	req, err := json.Marshal(enqueueRequest{Envelope: env, Data: data})
	if err != nil {
		return 0, err
	}
	res, err := handOver(ctx, cfg.Dir, ".enq", req)
	if err != nil {
		return 0, err
	}
	if len(res.Done) != 1 {
		return 0, fmt.Errorf("queue: the running gateway answered %d IDs for one message", len(res.Done))
	}
	return res.Done[0], nil
}

// runEnqueue queues a message a .enq file hands over and answers with its
// ID. The request is claimed by renaming it (.enqwork), so a request the
// CLI withdraws is queued here or not at all. A .enqwork left by a crash
// is queued again: if the crash came after the message was queued and
// before the reply, the recipient gets it twice, which is better than
// never (the CLI had already given up waiting and said so).
func (q *Spool) runEnqueue(path string) {
	base, ok := strings.CutSuffix(path, ".enq")
	if ok {
		if os.Rename(path, base+".enqwork") != nil {
			return // withdrawn meanwhile
		}
	} else {
		base = strings.TrimSuffix(path, ".enqwork")
	}
	var res Result
	var id ID
	data, err := os.ReadFile(base + ".enqwork")
	var req enqueueRequest
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&req); err != nil {
			err = fmt.Errorf("enqueue request: %w", err)
		}
	}
	if err == nil {
		id, err = q.Enqueue(req.Envelope, bytes.NewReader(req.Data))
	}
	if err != nil {
		res.Error = err.Error()
	} else {
		res.Done = []ID{id}
	}
	q.log.Info("queue: control enqueue", "id", id.String(), "from", req.Envelope.From,
		"rcpts", len(req.Envelope.Rcpts), "size", len(req.Data), "error", res.Error)
	// The request goes before the reply is written: a reply that cannot
	// be written (a full disk) must not make the next pass queue the
	// message again. The CLI then reports that no answer came.
	os.Remove(base + ".enqwork")
	out, _ := json.Marshal(res)
	if err := safeio.WriteFile(base+".reply", out, 0o640); err != nil && !errors.Is(err, safeio.ErrNotDurable) {
		q.log.Warn("queue: writing a control reply", "path", base+".reply", "err", err)
		return
	}
	safeio.ChownLikeParent(base + ".reply")
}
