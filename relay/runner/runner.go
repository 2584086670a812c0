// Package runner delivers what the queue holds: workers claim due
// messages, route each recipient (relay's routing), group recipients by
// next hop, rewrite each group's copy for its route (rewrite.Copy: the
// queue keeps the message as received), sanitize (relay/sanitize)
// and DKIM-sign (relay/inspect) the copy, deliver it (relay/delivery), and
// record every recipient's outcome with the retry schedule; final failures
// and delays are reported by DSN (relay/dsn). It owns relay.delivery.
//
// The mail path through it, file by file: workers.go (the worker loop and
// the delivery client a reload replaces), runner.go (one message: route,
// group, rewrite, deliver, record), body.go (the bytes a copy reads: the
// stored message, or a new header before its stored body, and where they
// are on disk for sendfile), sign.go, dsn.go (bounces, delay
// warnings, relayed receipts, the postmaster's copies) and faults.go (what
// happens when the spool cannot record a result).
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/accounts/safeio"
	"github.com/sekisho/sekisho/relay/delivery"
	"github.com/sekisho/sekisho/relay/dsn"
	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/sanitize"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// Shared is what the runner uses for the life of the process.
type Shared struct {
	Queue   *queue.Spool
	Metrics *ops.Metrics
	Log     *slog.Logger
	// Trace is the live protocol trace's hook; nil for none.
	Trace delivery.Tracer
}

// Snapshot is the configuration a delivery attempt works with; a reload
// builds a new one, and an attempt keeps the one it started with.
type Snapshot struct {
	Hostname       string // HELO, DSNs
	Postmaster     string // the From of our DSNs
	MaxHeaderBytes int    // relay.limits.max_header_bytes
	Delivery       Config
	Router         *routing.Router
	Rewriter       *rewrite.Rewriter
	// Inner reports whether an address is in relay.guard.inner_networks,
	// for the routes that mask the Received fields written inside; nil:
	// none is.
	Inner    func(netip.Addr) bool
	Sanitize *sanitize.Stage    // nil: nothing is sanitized
	Inspect  *inspect.Inspector // nil: nothing is signed
}

// Runner delivers queued messages.
type Runner struct {
	sh     *Shared
	snap   func() *Snapshot
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the delivery client and the workers, which a reload
	// replaces and resizes (workers.go).
	mu     sync.Mutex
	client *clientRef
	ctx    context.Context
	quits  []chan struct{} // one a worker

	// Results the spool could not record, and the pause while it cannot
	// (see faults.go).
	faultMu sync.Mutex
	kept    map[queue.ID]*keptResult
	pause   pauseState
	unit    time.Duration // of the back-offs in faults.go
}

// New makes a runner; snap returns the snapshot of the moment.
func New(sh *Shared, snap func() *Snapshot) *Runner {
	opts := sh.deliveryOptions(snap())
	return &Runner{sh: sh, snap: snap, client: &clientRef{c: delivery.NewClient(opts), opts: opts},
		kept: map[queue.ID]*keptResult{}, unit: time.Second}
}

// Run starts the workers; they deliver until ctx ends or Stop.
func (r *Runner) Run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	r.cancel = cancel
	r.mu.Lock()
	r.ctx = ctx
	r.resize(r.snap().Delivery.Workers)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.gauges(ctx)
	}()
}

// Stop stops the workers, waiting for the attempts under way.
func (r *Runner) Stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	r.mu.Lock()
	r.client.c.Close()
	r.mu.Unlock()
	r.dropKept()
}

// gauges keeps the queue metrics current.
func (r *Runner) gauges(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		st := r.sh.Queue.Stats()
		r.sh.Metrics.QueueSize.Set(float64(st.Messages))
		oldest := 0.0
		if !st.Oldest.IsZero() {
			oldest = time.Since(st.Oldest).Seconds()
		}
		r.sh.Metrics.QueueOldest.Set(oldest)
		r.pruneKept()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// outcome is one recipient's result of one attempt.
type outcome struct {
	rcpt      int
	code      int
	enhanced  string
	text      string
	temporary bool
	delivered bool
	hop       string // the rule or host that was tried, for logs and metrics
	remote    string
	dsnPassed bool // the next hop took NOTIFY and ORCPT: its notifications from now on
	// sentFrom and sentTo are the envelope of the copy as sent (after its
	// route's rewrite); "" when no copy was made.
	sentFrom, sentTo string
	sent             bool
}

func (o outcome) reason() string {
	switch {
	case o.code > 0 && o.enhanced != "":
		return fmt.Sprintf("%d %s %s", o.code, o.enhanced, o.text)
	case o.code > 0:
		return fmt.Sprintf("%d %s", o.code, o.text)
	}
	return o.text
}

// Group is the recipients of one message that share a next hop: one copy,
// one transaction.
type Group struct {
	Decision routing.Decision
	// Rcpts are indexes into the envelope's recipients.
	Rcpts []int
}

// Unrouted is a recipient that could not be routed: Decision is what
// routing decided before it failed (its route's name, for the log).
type Unrouted struct {
	Rcpt     int
	Decision routing.Decision
	Err      error
}

// Groups routes each of rcpts (indexes into env.Rcpts) and groups them by
// next hop, in the order of their first recipient; the recipients that
// cannot be routed come back in failed.
func (st *Snapshot) Groups(ctx context.Context, env queue.Envelope, rcpts []int) (groups []Group, failed []Unrouted) {
	byKey := map[string]int{}
	for _, i := range rcpts {
		dec, err := st.Router.Route(ctx, env.Rcpts[i].Addr, env.From)
		if err != nil {
			failed = append(failed, Unrouted{Rcpt: i, Decision: dec, Err: err})
			continue
		}
		g, ok := byKey[dec.Key]
		if !ok {
			g = len(groups)
			byKey[dec.Key] = g
			groups = append(groups, Group{Decision: dec})
		}
		groups[g].Rcpts = append(groups[g].Rcpts, i)
	}
	return groups, failed
}

// CopyInput is what decides a group's copy, for rewrite.Rewriter.Copy:
// the envelope sender as queued (as received), the group's recipients as
// queued, the message source, the route's rewrite set and its Received
// policy. The header is the caller's to add (only when
// Rewriter.CopyReadsHeader says it is needed). The delivery runner and
// the dry runs build the copy with it, so both show the same copy.
func (st *Snapshot) CopyInput(env queue.Envelope, dec routing.Decision, rcpts []int) rewrite.CopyInput {
	src := env.Source
	if src == 0 {
		src = rewrite.SourceInner // a record from a build that wrote no source
	}
	to := make([]string, len(rcpts))
	for j, i := range rcpts {
		to[j] = env.Rcpts[i].Addr
	}
	return rewrite.CopyInput{From: env.From, To: to, Source: src, Set: dec.Rewrite,
		Received: rewrite.ReceivedPolicy{Inner: st.Inner, Self: st.Hostname,
			Mask: dec.Received == routing.ReceivedMaskInner, Remove: dec.Received == routing.ReceivedRemoveInner}}
}

// deliver attempts the message's due recipients and records the outcomes.
// It returns the time before which the message must not be claimed again
// (zero when every outcome was recorded).
func (r *Runner) deliver(ctx context.Context, m queue.Message) time.Time {
	st := r.snap()
	due := m.Due(time.Now())
	if len(due) == 0 {
		return time.Time{}
	}
	var results []outcome
	groups, failed := st.Groups(ctx, m.Envelope, due)
	for _, f := range failed {
		var re *routing.Error
		o := outcome{rcpt: f.Rcpt, code: 451, enhanced: "4.4.3", text: f.Err.Error(), temporary: true, hop: f.Decision.Label()}
		if errors.As(f.Err, &re) {
			o.code, o.enhanced, o.text, o.temporary = re.Code, re.Enhanced, re.Msg, re.Temporary
		}
		results = append(results, o)
	}
	for _, g := range groups {
		results = append(results, r.deliverGroup(ctx, st, m, g)...)
	}
	if ctx.Err() != nil {
		// Shutting down: an interrupted attempt is not a failure of the
		// next hop. Nothing is recorded; the next start tries again.
		return time.Time{}
	}
	// The retry schedule counts from the end of the attempt: a next hop
	// that stalls for minutes still gets the whole interval of rest.
	now := time.Now()
	return r.keep(m, r.record(st, m, results, now, true), now)
}

// deliverGroup sends one message to the recipients that share a next hop:
// the copy rewritten for its route (Snapshot.CopyInput, rewrite.Copy),
// then sanitized and signed.
func (r *Runner) deliverGroup(ctx context.Context, st *Snapshot, m queue.Message, g Group) []outcome {
	hop := g.Decision.Label()
	fail := func(code int, enh, text string, temp bool) []outcome {
		out := make([]outcome, len(g.Rcpts))
		for j, i := range g.Rcpts {
			out[j] = outcome{rcpt: i, code: code, enhanced: enh, text: text, temporary: temp, hop: hop}
		}
		return out
	}
	in := st.CopyInput(m.Envelope, g.Decision, g.Rcpts)
	if st.Rewriter.CopyReadsHeader(in) {
		header, err := r.readHeader(m.ID, st.MaxHeaderBytes*2)
		if err != nil {
			return fail(451, "4.3.0", "reading the queued message: "+err.Error(), true)
		}
		in.Header = header
	}
	cp, err := st.Rewriter.Copy(in)
	if err != nil {
		return fail(451, "4.3.5", "rewriting the copy for route "+hop+": "+err.Error(), true)
	}
	for _, s := range cp.Trace {
		if s.Rule != "" && s.Before != s.After {
			r.sh.Metrics.Rewrites.WithLabelValues(s.Rule).Inc()
		}
	}
	var newHeader []byte // nil: send the stored bytes as they are
	size := m.Envelope.Size
	if cp.HeaderChanged {
		newHeader = cp.Header
		size += int64(len(cp.Header) - len(in.Header))
	}
	from, to := cp.From, cp.To
	stored := int64(len(in.Header)) // the stored header's length, when it was read
	body := func() (io.ReadCloser, error) { return r.body(m.ID, newHeader, stored, st.MaxHeaderBytes*2) }
	if st.Sanitize.Applies(m.Envelope.Source, m.Envelope.ClientIP, g.Decision.Rule) { // 無害化
		var err error
		if body, size, err = r.sanitize(ctx, st, m, g.Decision.Rule, g.Rcpts, body); err != nil {
			return fail(451, "4.3.0", "sanitizing the message: "+err.Error(), true)
		}
	}
	body, signed, err := r.dkimSign(st, m, body) // after the rewrite and 無害化, before anything is sent
	if err != nil {
		return fail(451, "4.3.0", "reading the queued message to sign it: "+err.Error(), true)
	}
	// sent gives every recipient of the group the result of the RCPT
	// its copy's address got: two recipients the rewrite merged share one.
	sent := func(res func(j int) outcome) []outcome {
		out := make([]outcome, len(g.Rcpts))
		for k, i := range g.Rcpts {
			o := res(cp.Of[k])
			o.rcpt, o.hop, o.sentFrom, o.sentTo, o.sent = i, hop, from, to[cp.Of[k]], true
			out[k] = o
		}
		return out
	}

	if g.Decision.Kind == routing.KindDir {
		if err := r.writeDir(g.Decision.Dir, m, from, to, body); err != nil {
			return fail(451, "4.3.0", "writing into "+g.Decision.Dir+": "+err.Error(), true)
		}
		return sent(func(int) outcome {
			return outcome{code: 250, enhanced: "2.0.0", text: "written into " + g.Decision.Dir, delivered: true}
		})
	}

	msg := delivery.Message{From: from, Rcpts: to, Size: size + signed,
		EightBit: strings.EqualFold(m.Envelope.BodyType, "8BITMIME"), SMTPUTF8: m.Envelope.SMTPUTF8, Body: body,
		Ret: m.Envelope.Ret, EnvID: m.Envelope.EnvID, RcptDSN: make([]delivery.RcptDSN, len(to))}
	for k := len(g.Rcpts) - 1; k >= 0; k-- { // the first recipient of a merged address gives its DSN request
		rc := m.Envelope.Rcpts[g.Rcpts[k]]
		msg.RcptDSN[cp.Of[k]] = delivery.RcptDSN{Notify: rc.Notify, ORcpt: rc.ORcpt}
	}
	var last []delivery.Result
	for _, h := range g.Decision.Hops {
		if len(h.Addrs) == 0 {
			continue
		}
		t := delivery.Target{Host: h.Host, HeloName: st.Hostname, MaxConns: g.Decision.MaxConnections,
			TLS: delivery.TLSPolicy{Mode: delivery.TLSMode(g.Decision.TLS.Mode), CAFile: g.Decision.TLS.CAFile, ServerName: g.Decision.TLS.ServerName}}
		if t.TLS.Mode == delivery.TLSOpportunistic || t.TLS.Mode == "" {
			t.TLS.InsecureSkipVerify = true // opportunistic TLS protects against passive reading only
		}
		for _, a := range h.Addrs {
			t.Addrs = append(t.Addrs, netip.AddrPortFrom(a, uint16(h.Port)).String())
		}
		if a := g.Decision.Auth; a != nil {
			t.Auth = &delivery.Auth{Mechanism: delivery.Mechanism(strings.ToUpper(a.Mechanism)), Username: a.Username,
				Password: a.Password, AllowPlaintext: a.AllowPlaintext}
		}
		cl := r.acquire()
		res, err := cl.c.Deliver(ctx, t, msg)
		r.release(cl)
		if err != nil {
			return fail(451, "4.3.0", "delivery to "+h.Host+": "+err.Error(), true)
		}
		last = res
		if !allUnreached(res) {
			break // the hop answered: its replies stand (MX failover only on no answer)
		}
	}
	if last == nil {
		return fail(451, "4.4.3", "no next hop has an address", true)
	}
	return sent(func(j int) outcome {
		res := last[j]
		return outcome{code: res.Code, enhanced: res.Enhanced, text: res.Text, temporary: res.Temporary,
			delivered: res.Delivered, remote: res.Remote, dsnPassed: res.DSN}
	})
}

func allUnreached(res []delivery.Result) bool {
	for _, r := range res {
		if r.Code != 0 || r.Delivered {
			return false
		}
	}
	return true
}

// writeDir delivers into a local folder (capture and testing): one file
// per message and next hop, the envelope in X-Sekisho- fields on top.
func (r *Runner) writeDir(dir string, m queue.Message, from string, to []string, body func() (io.ReadCloser, error)) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	rc, err := body()
	if err != nil {
		return err
	}
	defer rc.Close()
	name := filepath.Join(dir, fmt.Sprintf("%s-%s.eml", m.ID, shortHash(strings.Join(to, ","))))
	return safeio.WriteFileFunc(name, 0o640, func(w io.Writer) error {
		fmt.Fprintf(w, "X-Sekisho-Queue-ID: %s\r\nX-Sekisho-Envelope-From: <%s>\r\n", m.ID, from)
		for _, t := range to {
			fmt.Fprintf(w, "X-Sekisho-Envelope-To: <%s>\r\n", t)
		}
		_, err := io.Copy(w, rc)
		return err
	})
}

func shortHash(s string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return fmt.Sprintf("%08x", h)
}

// record applies the retry schedule to each outcome and stores it; the
// recipients that failed for good are bounced in the same commit. It
// returns the outcomes the spool could not record and the first such
// error: the caller keeps them in memory (see keep). logIt is false when
// outcomes kept earlier are recorded again: their attempt was logged.
func (r *Runner) record(st *Snapshot, m queue.Message, results []outcome, now time.Time, logIt bool) unrecorded {
	d := st.Delivery
	var failed, delayed, relayed []outcome
	var lost unrecorded
	for _, o := range results {
		rs := m.Rcpts[o.rcpt]
		rcpt := m.Envelope.Rcpts[o.rcpt].Addr
		attempt := rs.Attempts + 1
		result := "delivered"
		var err error
		switch {
		case o.delivered && !o.dsnPassed && notifyWants(m.Envelope.Rcpts[o.rcpt].Notify, "SUCCESS"):
			// RFC 3461 §4.2: the next hop cannot report the success, so
			// the receipt says "relayed", committed with the delivery.
			relayed = append(relayed, o)
		case o.delivered:
			err = r.sh.Queue.MarkDelivered(m.ID, o.rcpt)
		case r.giveUp(d, m, rs, o, now):
			result = "failed"
			failed = append(failed, o)
		default:
			result = "deferred"
			next := now.Add(retryDelay(d, attempt))
			err = r.sh.Queue.MarkDeferred(m.ID, o.rcpt, next, o.reason())
			if err == nil && d.DelayWarning > 0 && now.Sub(m.Envelope.ReceivedAt) >= d.DelayWarning && !rs.DelayNotified &&
				notifyWants(m.Envelope.Rcpts[o.rcpt].Notify, "DELAY") {
				delayed = append(delayed, o)
			}
		}
		lost.add(o, err)
		if !logIt {
			continue
		}
		kind := "send"
		if result != "delivered" {
			kind = "fail"
		}
		// The envelope of the copy as sent; the queued one too where the
		// copy's rewrite changed it.
		from, to, queued := m.Envelope.From, rcpt, []any(nil)
		if o.sent {
			from, to = o.sentFrom, o.sentTo
			if from != m.Envelope.From {
				queued = append(queued, "queued_from", m.Envelope.From)
			}
			if to != rcpt {
				queued = append(queued, "queued_rcpt", rcpt)
			}
		}
		r.sh.Log.Info("delivery", append([]any{"kind", kind, "id", m.ID.String(), "rcpt", to, "from", from,
			"hop", o.hop, "remote", o.remote, "result", result, "code", o.code, "reply", o.reason(),
			"attempt", attempt, "delay_s", int(now.Sub(m.Envelope.ReceivedAt).Seconds())}, queued...)...)
		r.sh.Metrics.Attempts.WithLabelValues(o.hop, result).Inc()
	}
	if len(failed) > 0 {
		if err := r.bounce(st, m, failed, now, dsn.Failed); err != nil {
			for _, o := range failed {
				lost.add(o, err)
			}
		}
	}
	if len(relayed) > 0 {
		if err := r.bounce(st, m, relayed, now, dsn.Relayed); err != nil {
			for _, o := range relayed {
				lost.add(o, err)
			}
		}
	}
	if len(delayed) > 0 {
		// A warning that cannot be queued is simply due again at the
		// next attempt: DelayNotified is still unset.
		r.bounce(st, m, delayed, now, dsn.Delayed)
	}
	return lost
}

// giveUp applies E-Post's schedule: a 5xx is retried refusal_retries
// times; a 4xx until tempfail_lifetime; no answer at all until
// no_response_lifetime.
func (r *Runner) giveUp(d Config, m queue.Message, rs queue.RcptState, o outcome, now time.Time) bool {
	age := now.Sub(m.Envelope.ReceivedAt)
	switch {
	case !o.temporary && o.code >= 500:
		return rs.Refusals >= d.RefusalRetries
	case !o.temporary:
		return true
	case o.code == 0:
		return age >= d.NoResponseLifetime
	}
	return age >= d.TempFailLifetime
}

// retryDelay is the wait before attempt n+1: the interval, grown by the
// backoff factor, capped, with ±10% jitter so retries do not march in step.
func retryDelay(d Config, attempt int) time.Duration {
	delay := float64(d.RetryInterval) * math.Pow(d.Backoff, float64(attempt-1))
	if d.MaxInterval > 0 && delay > float64(d.MaxInterval) {
		delay = float64(d.MaxInterval)
	}
	delay *= 0.9 + 0.2*rand.Float64()
	return time.Duration(delay)
}

// sanitize is the 無害化 step for a group of recipients whose route and
// source relay.sanitize selects: it returns what to send instead of view
// (relay/sanitize keeps the copy for the retries and the original in the
// quarantine) and its size.
func (r *Runner) sanitize(ctx context.Context, st *Snapshot, m queue.Message, route string, rcpts []int, view func() (io.ReadCloser, error)) (func() (io.ReadCloser, error), int64, error) {
	stored := func() (io.ReadCloser, error) { return r.sh.Queue.Open(m.ID) }
	c, err := st.Sanitize.Outgoing(ctx, m, route, rcpts, stored, view)
	if err != nil {
		return nil, 0, err
	}
	if c.Made || c.Released {
		r.sh.Log.Info("sanitize", "kind", "sanitize", "id", m.ID.String(), "route", route, "release_id", c.ReleaseID,
			"result", c.Result, "size", c.Size)
	}
	return c.Open, c.Size, nil
}
