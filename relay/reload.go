package relay

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/sekisho/sekisho/relay/delivery"
)

// What a reload applies and what waits for a restart. Everything in the
// state (accounts, rewrite, routing, guard, line-ending policy, the
// hostname in Received and in delivery's EHLO, max_received_fields,
// max_header_bytes) is replaced at once; the TLS certificate is loaded
// again; delivery gets a new client with the new timeouts and its worker
// count. The rest is fixed by the running listeners and queue, and a
// change to it is named in the reload log line.

func deliveryOptions(c Config) delivery.Options {
	d := c.Delivery
	return delivery.Options{
		HeloName:          c.Hostname,
		DialTimeout:       d.ConnectTimeout,
		CommandTimeout:    d.CommandTimeout,
		DataTimeout:       d.DataTimeout,
		IdleTimeout:       d.IdleTimeout,
		MaxConnsPerTarget: d.MaxConnsPerHop,
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
				m, err := r.e.queue.Claim(ctx)
				if err != nil {
					return
				}
				r.deliver(ctx, m)
				r.e.queue.Unclaim(m.ID)
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
// only a restart applies. tlsAtStart: a certificate was loaded at start
// (STARTTLS is offered only by listeners started with one).
func restartOnly(running, next Config, tlsAtStart bool) []string {
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
	if running.Hostname != next.Hostname {
		out = append(out, "relay.hostname (in the greeting and EHLO reply; Received and delivery use the new one)")
	}
	if !tlsAtStart && next.TLS.CertFile != "" {
		out = append(out, "relay.tls (STARTTLS is offered only by listeners started with a certificate)")
	}
	// The SMTP server reads these when a listener starts.
	rl, nl := reflect.ValueOf(running.Limits), reflect.ValueOf(next.Limits)
	for i := 0; i < rl.NumField(); i++ {
		tag := rl.Type().Field(i).Tag.Get("koanf")
		if tag == "max_received_fields" || tag == "max_header_bytes" {
			continue // read from the state at every message
		}
		diff("relay.limits."+tag, rl.Field(i).Interface(), nl.Field(i).Interface())
	}
	return out
}

// restartNote is the reload log's word on what waits for a restart.
func restartNote(keys []string) string {
	if len(keys) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%s (the running values stay until a restart)", strings.Join(keys, ", "))
}
