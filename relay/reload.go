package relay

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sekisho/sekisho/relay/delivery"
)

// What a reload applies and what waits for a restart. Everything in the
// state (accounts, rewrite, routing, guard, line-ending policy, the
// hostname, the limits) is replaced at once for new connections and
// messages: the listeners' protocol servers and connection caps take the
// new limits, hostname and TLS configuration (a certificate given only
// now turns STARTTLS on); the TLS certificate is loaded again; delivery
// gets a new client with the new timeouts and its worker count. Open
// sessions keep what they started with. The listeners themselves, the
// queue folder, AUTH, logging and metrics are fixed until a restart, and
// a change to them is named in the reload log line.

func deliveryOptions(c Config) delivery.Options {
	d := c.Delivery
	return delivery.Options{
		HeloName:          c.Hostname,
		DialTimeout:       d.ConnectTimeout,
		CommandTimeout:    d.CommandTimeout,
		DataTimeout:       d.DataTimeout,
		IdleTimeout:       d.IdleTimeout,
		MaxConnsPerTarget: d.MaxConnsPerHop,
		NoChunking:        !d.Chunking,
	}
}

// clientRef is a delivery client and the deliveries using it: a reload
// retires it, and it is closed when the last of them returns, so that no
// delivery in flight fails because of a reload.
type clientRef struct {
	c       *delivery.Client
	opts    delivery.Options
	users   int
	retired bool
}

func (r *runner) acquire() *clientRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.client.users++
	return r.client
}

func (r *runner) release(cl *clientRef) {
	r.mu.Lock()
	cl.users--
	closeIt := cl.retired && cl.users == 0
	r.mu.Unlock()
	if closeIt {
		cl.c.Close()
	}
}

// resize starts or stops workers until n run. A stopped worker finishes
// the message it holds: a delivery is never cut off by a reload. r.mu is
// held.
func (r *runner) resize(n int) {
	for len(r.quits) < n {
		quit := make(chan struct{})
		r.quits = append(r.quits, quit)
		ctx := r.ctx
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			// Claim hands out a due message without looking at ctx, so
			// the loop checks it: after shutdown starts, an unrecorded
			// message is due again at once.
			for ctx.Err() == nil {
				select {
				case <-quit:
					return
				default:
				}
				probe, ok := r.waitTurn(ctx)
				if !ok {
					return
				}
				m, err := r.e.queue.Claim(ctx)
				if err != nil {
					r.endProbe(probe, false)
					return
				}
				// A result the spool could not record is recorded first
				// (runner_faults.go): the message is never delivered twice.
				var after time.Time
				if k := r.takeKept(m.ID); k != nil {
					after = r.recordKept(m, k)
				} else {
					after = r.deliver(ctx, m)
				}
				r.endProbe(probe, after.IsZero())
				if after.IsZero() {
					r.e.queue.Unclaim(m.ID)
				} else {
					r.e.queue.UnclaimAfter(m.ID, after)
				}
			}
		}()
	}
	for len(r.quits) > n {
		close(r.quits[len(r.quits)-1])
		r.quits = r.quits[:len(r.quits)-1]
	}
}

// reconfigure applies a reloaded configuration to delivery.
func (r *runner) reconfigure(c Config) {
	opts := deliveryOptions(c)
	opts.Trace = r.e.deliveryTrace()
	r.mu.Lock()
	var old *clientRef
	if opts != r.client.opts {
		old = r.client
		old.retired = true
		r.client = &clientRef{c: delivery.NewClient(opts), opts: opts}
	}
	if r.ctx != nil && r.ctx.Err() == nil {
		r.resize(c.Delivery.Workers)
	}
	closeOld := old != nil && old.users == 0
	r.mu.Unlock()
	if closeOld {
		old.c.Close()
	}
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
	return out
}

// restartNote is the reload log's word on what waits for a restart.
func restartNote(keys []string) string {
	if len(keys) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%s (the running values stay until a restart)", strings.Join(keys, ", "))
}
