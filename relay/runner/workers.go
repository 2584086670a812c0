package runner

import (
	"time"

	"github.com/sekisho/sekisho/relay/delivery"
)

// The workers and the delivery client they share. A reload gives delivery
// a new client when its options changed (the old one is closed when the
// last delivery using it returns) and resizes the workers; a delivery in
// flight is never cut off by either.

func (sh *Shared) deliveryOptions(st *Snapshot) delivery.Options {
	d := st.Delivery
	return delivery.Options{
		HeloName:          st.Hostname,
		DialTimeout:       d.ConnectTimeout,
		CommandTimeout:    d.CommandTimeout,
		DataTimeout:       d.DataTimeout,
		IdleTimeout:       d.IdleTimeout,
		MaxConnsPerTarget: d.MaxConnsPerHop,
		NoChunking:        !d.Chunking,
		Trace:             sh.Trace,
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

func (r *Runner) acquire() *clientRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.client.users++
	return r.client
}

func (r *Runner) release(cl *clientRef) {
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
func (r *Runner) resize(n int) {
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
				m, err := r.sh.Queue.Claim(ctx)
				if err != nil {
					r.endProbe(probe, false)
					return
				}
				// A result the spool could not record is recorded first
				// (faults.go): the message is never delivered twice.
				var after time.Time
				if k := r.takeKept(m.ID); k != nil {
					after = r.recordKept(m, k)
				} else {
					after = r.deliver(ctx, m)
				}
				r.endProbe(probe, after.IsZero())
				if after.IsZero() {
					r.sh.Queue.Unclaim(m.ID)
				} else {
					r.sh.Queue.UnclaimAfter(m.ID, after)
				}
			}
		}()
	}
	for len(r.quits) > n {
		close(r.quits[len(r.quits)-1])
		r.quits = r.quits[:len(r.quits)-1]
	}
}

// Reconfigure applies the current snapshot (a reload) to delivery: the
// client's options and the number of workers.
func (r *Runner) Reconfigure() {
	st := r.snap()
	opts := r.sh.deliveryOptions(st)
	r.mu.Lock()
	var old *clientRef
	if opts != r.client.opts {
		old = r.client
		old.retired = true
		r.client = &clientRef{c: delivery.NewClient(opts), opts: opts}
	}
	if r.ctx != nil && r.ctx.Err() == nil {
		r.resize(st.Delivery.Workers)
	}
	closeOld := old != nil && old.users == 0
	r.mu.Unlock()
	if closeOld {
		old.c.Close()
	}
}

// Workers is the number of workers running (relay.delivery.workers once
// Run and every Reconfigure have taken effect).
func (r *Runner) Workers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.quits)
}
