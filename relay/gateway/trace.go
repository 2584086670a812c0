package gateway

import (
	"path/filepath"

	"github.com/sekisho/sekisho/relay/delivery"
	"github.com/sekisho/sekisho/relay/ops/trace"
	"github.com/sekisho/sekisho/relay/smtpd"
)

// The live protocol trace (sekisho trace): one hub for the process, a unix
// socket in the queue folder, and the hooks handed to the SMTP server and
// the delivery client.

// TraceSocket is where `sekisho trace` attaches for a queue folder.
func TraceSocket(c Config) string { return filepath.Join(c.Queue.Dir, trace.SocketName) }

// startTrace opens the trace socket. A gateway that cannot open it still
// serves mail: the trace is a diagnosis, not part of the mail path.
func (e *Engine) startTrace() {
	if e.trace == nil {
		return
	}
	path := TraceSocket(e.startCfg)
	l, err := trace.Listen(path)
	if err != nil {
		e.log.Warn("trace socket not opened; sekisho trace cannot attach", "kind", "reload", "path", path, "error", err)
		return
	}
	e.traceLn = l
	log, hub := e.log, e.trace
	go func() {
		if err := hub.Serve(l, log); err != nil {
			log.Warn("trace socket failed", "kind", "reload", "path", path, "error", err)
		}
	}()
}

func (e *Engine) stopTrace() {
	if e.traceLn != nil {
		e.traceLn.Close() // removes the socket file too
		e.traceLn = nil
	}
}

// serverTrace and deliveryTrace are the hooks; nil without a hub (the
// dry-run sessions).
func (e *Engine) serverTrace() smtpd.Tracer {
	if e.trace == nil {
		return nil
	}
	return e.trace
}

func (e *Engine) deliveryTrace() delivery.Tracer {
	if e.trace == nil {
		return nil
	}
	return e.trace
}
