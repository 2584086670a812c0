package gateway

import (
	"crypto/tls"
	"log/slog"

	"github.com/sekisho/sekisho/accounts"
	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/queue"
)

// What the console (relay/console) uses of a running engine: the same
// queue, quarantine, policy and AUTH checker the mail path uses, so that
// every console action is the action the command line takes.

// Queue is the spool.
func (e *Engine) Queue() *queue.Spool { return e.queue }

// Authenticator checks account secrets under the SMTP AUTH lockout.
func (e *Engine) Authenticator() *auth.Authenticator { return e.sessions.Auth }

// Directory is the accounts directory of the current snapshot.
func (e *Engine) Directory() *accounts.Directory { return e.st.Load().dir }

// Config is the relay section of the current snapshot.
func (e *Engine) Config() Config { return e.st.Load().cfg }

// Log is the gateway's logger (with the trace tap when the store is on).
func (e *Engine) Log() *slog.Logger { return e.log }

// Instance is this gateway's name in the store.
func (e *Engine) Instance() string { return e.startCfg.Instance() }

// ServerTLS is the gateway's certificate for another listener (the
// console's HTTPS), following reloads; nil without relay.tls.
func (e *Engine) ServerTLS() *tls.Config { return e.tlsConfig() }

// DryRunner decides probes with the running snapshot: the console's dry
// runs see what live sessions see.
func (e *Engine) DryRunner() *DryRunner {
	st := e.st.Load()
	return &DryRunner{st: st, cfg: st.cfg}
}
