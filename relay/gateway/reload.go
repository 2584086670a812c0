package gateway

import (
	"fmt"
	"reflect"
	"strings"
)

// What a reload applies and what waits for a restart. Everything in the
// snapshot (accounts, rewrite, routing, guard, line-ending policy, the
// hostname, the limits, sanitize, inspect) is replaced at once for new
// connections and messages: the listeners' protocol servers and
// connection caps take the new limits, hostname and TLS configuration (a
// certificate given only now turns STARTTLS on); the TLS certificate is
// loaded again; delivery gets a new client with the new timeouts and its
// worker count. Open sessions keep what they started with. The listeners
// themselves, the queue folder, AUTH, logging and metrics are fixed until
// a restart, and a change to them is named in the reload log line.

// Reload swaps in a new configuration. Listeners and the queue location
// need a restart; a change to them is reported and ignored. On any error
// the running snapshot is kept.
func (e *Engine) Reload(sec Sections) error {
	st, err := buildState(sec, e.stageDeps(sec))
	if err != nil {
		return err
	}
	if err := e.loadCert(sec.Relay.TLS); err != nil {
		return err
	}
	e.st.Store(st)
	e.rates.SetConfig(sec.Relay.RateLimits)
	e.mu.Lock()
	if e.runner != nil {
		e.runner.Reconfigure()
	}
	e.mu.Unlock()
	e.reconfigureListeners(sec.Relay)
	restart := restartOnly(e.startCfg, sec.Relay)
	e.log.Info("configuration reloaded", "kind", "reload", "accounts", st.dir.Len(),
		"applied", "accounts, rewrite, routing, relay.guard, relay.bare_line_endings, relay.hostname, relay.tls, relay.limits, relay.rate_limits, relay.delivery (for new connections and messages), relay.sanitize, relay.inspect (DKIM keys reread)",
		"needs_restart", restartNote(restart))
	for _, w := range e.Warnings() {
		e.log.Warn(w.String(), "kind", "reload")
	}
	return nil
}

// restartOnly names the keys of next that differ from what runs and that
// only a restart applies.
func restartOnly(running, next Config) []string {
	var out []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, key)
		}
	}
	diff("relay.listeners", running.Listeners, next.Listeners)
	diff("relay.queue", running.Queue, next.Queue)
	diff("relay.auth", running.Auth, next.Auth)
	diff("relay.log", running.Log, next.Log)
	diff("relay.metrics", running.Metrics, next.Metrics)
	diff("relay.store", running.Store, next.Store)
	diff("relay.sanitize.convert.workers", running.Sanitize.Convert.Workers, next.Sanitize.Convert.Workers)
	return out
}

// restartNote is the reload log's word on what waits for a restart.
func restartNote(keys []string) string {
	if len(keys) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%s (the running values stay until a restart)", strings.Join(keys, ", "))
}
