package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
	"github.com/sekisho/sekisho/routing"
)

// runner delivers queued messages: workers claim due messages, route each
// recipient, apply the route's delivery-time rewrite, deliver per next
// hop, and record every recipient's outcome; final failures are bounced.
type runner struct {
	e      *Engine
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the delivery client and the workers, which a reload
	// replaces and resizes (reload.go).
	mu     sync.Mutex
	client *clientRef
	ctx    context.Context
	quits  []chan struct{} // one a worker
}

func newRunner(e *Engine) *runner {
	st := e.st.Load()
	opts := deliveryOptions(st.cfg)
	opts.Trace = e.deliveryTrace()
	return &runner{e: e, client: &clientRef{c: delivery.NewClient(opts), opts: opts}}
}

func (r *runner) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	r.cancel = cancel
	r.mu.Lock()
	r.ctx = ctx
	r.resize(r.e.st.Load().cfg.Delivery.Workers)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.gauges(ctx)
	}()
}

func (r *runner) stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	r.mu.Lock()
	r.client.c.Close()
	r.mu.Unlock()
}

// gauges keeps the queue metrics current.
func (r *runner) gauges(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		st := r.e.queue.Stats()
		r.e.metrics.QueueSize.Set(float64(st.Messages))
		oldest := 0.0
		if l := r.e.queue.List(); len(l) > 0 {
			oldest = time.Since(l[0].Envelope.ReceivedAt).Seconds()
		}
		r.e.metrics.QueueOldest.Set(oldest)
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

// group is the recipients of one message that share a next hop.
type group struct {
	dec   routing.Decision
	rcpts []int
}

func (r *runner) deliver(ctx context.Context, m queue.Message) {
	st := r.e.st.Load()
	now := time.Now()
	due := m.Due(now)
	if len(due) == 0 {
		return
	}
	var results []outcome
	groups := map[string]*group{}
	var order []string
	for _, i := range due {
		rc := m.Envelope.Rcpts[i].Addr
		dec, err := st.router.Route(ctx, rc, m.Envelope.From)
		if err != nil {
			var re *routing.Error
			o := outcome{rcpt: i, code: 451, enhanced: "4.4.3", text: err.Error(), temporary: true, hop: hopLabel(dec)}
			if errors.As(err, &re) {
				o.code, o.enhanced, o.text, o.temporary = re.Code, re.Enhanced, re.Msg, re.Temporary
			}
			results = append(results, o)
			continue
		}
		g := groups[dec.Key]
		if g == nil {
			g = &group{dec: dec}
			groups[dec.Key] = g
			order = append(order, dec.Key)
		}
		g.rcpts = append(g.rcpts, i)
	}
	for _, k := range order {
		results = append(results, r.deliverGroup(ctx, st, m, groups[k])...)
	}
	if ctx.Err() != nil {
		// Shutting down: an interrupted attempt is not a failure of the
		// next hop. Nothing is recorded; the next start tries again.
		return
	}
	r.record(st, m, results, now)
}

func hopLabel(dec routing.Decision) string {
	if dec.Rule != "" {
		return dec.Rule
	}
	return "mx"
}

// deliverGroup sends one message to the recipients that share a next hop,
// after the route's delivery-time rewrite.
func (r *runner) deliverGroup(ctx context.Context, st *state, m queue.Message, g *group) []outcome {
	hop := hopLabel(g.dec)
	fail := func(code int, enh, text string, temp bool) []outcome {
		out := make([]outcome, len(g.rcpts))
		for j, i := range g.rcpts {
			out[j] = outcome{rcpt: i, code: code, enhanced: enh, text: text, temporary: temp, hop: hop}
		}
		return out
	}
	from := m.Envelope.From
	to := make([]string, len(g.rcpts))
	for j, i := range g.rcpts {
		to[j] = m.Envelope.Rcpts[i].Addr
	}
	var newHeader []byte // nil: send the stored bytes as they are
	if g.dec.Rewrite != "" {
		rs, ok := st.rewriter.Set(g.dec.Rewrite)
		if !ok {
			return fail(451, "4.3.5", fmt.Sprintf("route %s names rewrite set %q, which does not exist", hop, g.dec.Rewrite), true)
		}
		header, err := r.readHeader(m.ID, st.cfg.Limits.MaxHeaderBytes*2)
		if err != nil {
			return fail(451, "4.3.0", "reading the queued message: "+err.Error(), true)
		}
		src, _ := rewrite.ParseSource(m.Envelope.Source)
		if src == 0 {
			src = rewrite.SourceInner
		}
		out, err := rs.Rewrite(rewrite.Input{From: from, To: to, Header: header, Source: src})
		if err != nil {
			return fail(451, "4.3.5", "delivery-time rewrite "+g.dec.Rewrite+" failed: "+err.Error(), true)
		}
		from, to, newHeader = out.From, out.To, out.Header
		for _, s := range out.Trace {
			if s.Rule != "" && s.Before != s.After {
				r.e.metrics.Rewrites.WithLabelValues(s.Rule).Inc()
			}
		}
	}
	body := func() (io.ReadCloser, error) { return r.body(m.ID, newHeader, st.cfg.Limits.MaxHeaderBytes*2) }

	if g.dec.Kind == routing.KindDir {
		if err := r.writeDir(g.dec.Dir, m, from, to, body); err != nil {
			return fail(451, "4.3.0", "writing into "+g.dec.Dir+": "+err.Error(), true)
		}
		out := fail(250, "2.0.0", "written into "+g.dec.Dir, false)
		for j := range out {
			out[j].delivered = true
		}
		return out
	}

	msg := delivery.Message{From: from, Rcpts: to, Size: m.Envelope.Size,
		EightBit: strings.EqualFold(m.Envelope.BodyType, "8BITMIME"), SMTPUTF8: m.Envelope.SMTPUTF8, Body: body}
	var last []delivery.Result
	for _, h := range g.dec.Hops {
		if len(h.Addrs) == 0 {
			continue
		}
		t := delivery.Target{Host: h.Host, HeloName: st.cfg.Hostname, MaxConns: g.dec.MaxConnections,
			TLS: delivery.TLSPolicy{Mode: delivery.TLSMode(g.dec.TLS.Mode), CAFile: g.dec.TLS.CAFile, ServerName: g.dec.TLS.ServerName}}
		if t.TLS.Mode == delivery.TLSOpportunistic || t.TLS.Mode == "" {
			t.TLS.InsecureSkipVerify = true // opportunistic TLS protects against passive reading only
		}
		for _, a := range h.Addrs {
			t.Addrs = append(t.Addrs, netip.AddrPortFrom(a, uint16(h.Port)).String())
		}
		if a := g.dec.Auth; a != nil {
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
	out := make([]outcome, len(g.rcpts))
	for j, res := range last {
		out[j] = outcome{rcpt: g.rcpts[j], code: res.Code, enhanced: res.Enhanced, text: res.Text,
			temporary: res.Temporary, delivered: res.Delivered, hop: hop, remote: res.Remote}
	}
	return out
}

func allUnreached(res []delivery.Result) bool {
	for _, r := range res {
		if r.Code != 0 || r.Delivered {
			return false
		}
	}
	return true
}

// readHeader returns the stored header block of a message.
func (r *runner) readHeader(id queue.ID, max int) ([]byte, error) {
	rc, err := r.e.queue.Open(id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return rewrite.ReadHeader(bufio.NewReader(rc), max)
}

// body returns the message to send: the stored bytes, or a new header in
// front of the stored body.
func (r *runner) body(id queue.ID, header []byte, max int) (io.ReadCloser, error) {
	rc, err := r.e.queue.Open(id)
	if err != nil || header == nil {
		return rc, err
	}
	br := bufio.NewReader(rc)
	if _, err := rewrite.ReadHeader(br, max); err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(header), br), rc}, nil
}

// writeDir delivers into a local folder (capture and testing): one file
// per message and next hop, the envelope in X-Sekisho- fields on top.
func (r *runner) writeDir(dir string, m queue.Message, from string, to []string, body func() (io.ReadCloser, error)) error {
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
// recipients that failed for good are bounced in the same commit.
func (r *runner) record(st *state, m queue.Message, results []outcome, now time.Time) {
	d := st.cfg.Delivery
	var failed, delayed []outcome
	for _, o := range results {
		rs := m.Rcpts[o.rcpt]
		rcpt := m.Envelope.Rcpts[o.rcpt].Addr
		attempt := rs.Attempts + 1
		result := "delivered"
		var err error
		switch {
		case o.delivered:
			err = r.e.queue.MarkDelivered(m.ID, o.rcpt)
		case r.giveUp(d, m, rs, o, now):
			result = "failed"
			failed = append(failed, o)
		default:
			result = "deferred"
			next := now.Add(retryDelay(d, attempt))
			err = r.e.queue.MarkDeferred(m.ID, o.rcpt, next, o.reason())
			if d.DelayWarning > 0 && now.Sub(m.Envelope.ReceivedAt) >= d.DelayWarning && !rs.DelayNotified &&
				notifyWants(m.Envelope.Rcpts[o.rcpt].Notify, "DELAY") {
				delayed = append(delayed, o)
			}
		}
		if err != nil {
			r.e.log.Error("recording a delivery result", "id", m.ID.String(), "rcpt", rcpt, "error", err)
		}
		kind := "send"
		if result != "delivered" {
			kind = "fail"
		}
		r.e.log.Info("delivery", "kind", kind, "id", m.ID.String(), "rcpt", rcpt, "from", m.Envelope.From,
			"hop", o.hop, "remote", o.remote, "result", result, "code", o.code, "reply", o.reason(),
			"attempt", attempt, "delay_s", int(now.Sub(m.Envelope.ReceivedAt).Seconds()))
		r.e.metrics.Attempts.WithLabelValues(o.hop, result).Inc()
	}
	if len(failed) > 0 {
		r.bounce(st, m, failed, now, dsn.Failed)
	}
	if len(delayed) > 0 {
		r.bounce(st, m, delayed, now, dsn.Delayed)
	}
}

// giveUp applies E-Post's schedule: a 5xx is retried refusal_retries
// times; a 4xx until tempfail_lifetime; no answer at all until
// no_response_lifetime.
func (r *runner) giveUp(d DeliveryConfig, m queue.Message, rs queue.RcptState, o outcome, now time.Time) bool {
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
func retryDelay(d DeliveryConfig, attempt int) time.Duration {
	delay := float64(d.RetryInterval) * math.Pow(d.Backoff, float64(attempt-1))
	if d.MaxInterval > 0 && delay > float64(d.MaxInterval) {
		delay = float64(d.MaxInterval)
	}
	delay *= 0.9 + 0.2*rand.Float64()
	return time.Duration(delay)
}

// bounce queues a DSN to the sender for the failed recipients, committing
// their failure in the same record (no double bounce after a crash), or
// just marks them failed when no bounce is due (null sender, a report,
// NOTIFY=NEVER).
//
// With action Delayed it is a delay warning: the recipients stay queued
// and are only marked as warned, in the same commit as the warning.
func (r *runner) bounce(st *state, m queue.Message, failed []outcome, now time.Time, action dsn.Action) {
	header, _ := r.readHeader(m.ID, st.cfg.Limits.MaxHeaderBytes*2)
	var marks []queue.Mark
	var recips []dsn.Recipient
	markStatus, notify := queue.Failed, "FAILURE"
	if action == dsn.Delayed {
		markStatus, notify = queue.Deferred, "DELAY"
	}
	for _, o := range failed {
		rc := m.Envelope.Rcpts[o.rcpt]
		marks = append(marks, queue.Mark{Rcpt: o.rcpt, Status: markStatus, Reason: o.reason()})
		if !notifyWants(rc.Notify, notify) {
			continue
		}
		status := o.enhanced
		if status == "" || status == "X.0.0" {
			status = "4.0.0"
		}
		switch {
		case action == dsn.Delayed:
			status = "4" + status[1:]
		case status[0] == '4':
			status = "5" + status[1:] // the delivery failed for good
		}
		diag := o.reason()
		if o.code > 0 {
			diag = "smtp; " + diag
		}
		orig := rc.ORcpt
		if orig == "" && rc.OrigAddr != "" && rc.OrigAddr != rc.Addr {
			orig = "rfc822;" + rc.OrigAddr
		}
		dr := dsn.Recipient{Final: rc.Addr, Original: orig, Action: action, Status: status,
			RemoteMTA: hostOf(o.remote), DiagnosticCode: diag, LastAttempt: now}
		if action == dsn.Delayed {
			dr.WillRetryUntil = m.Envelope.ReceivedAt.Add(st.cfg.Delivery.TempFailLifetime)
		}
		recips = append(recips, dr)
	}
	if len(recips) == 0 || !dsn.ShouldBounce(m.Envelope.From, header) {
		if action == dsn.Delayed {
			return // no warning is due; nothing to record
		}
		for _, mk := range marks {
			if err := r.e.queue.MarkFailed(m.ID, mk.Rcpt, mk.Reason); err != nil {
				r.e.log.Error("recording a failure", "id", m.ID.String(), "error", err)
			}
		}
		return
	}
	data, err := dsn.Build(dsn.Params{ReportingMTA: st.cfg.Hostname, From: st.cfg.postmaster(), To: m.Envelope.From, OrigEnvID: m.Envelope.EnvID,
		ArrivalDate: m.Envelope.ReceivedAt, Recipients: recips, OriginalHeader: header, Date: now})
	if err != nil {
		r.e.log.Error("building a bounce; marking failed without one", "id", m.ID.String(), "error", err)
		for _, mk := range marks {
			r.e.queue.MarkFailed(m.ID, mk.Rcpt, mk.Reason)
		}
		return
	}
	env := queue.Envelope{From: "", Rcpts: []queue.Recipient{{Addr: m.Envelope.From, OrigAddr: m.Envelope.From}},
		ReceivedAt: now, Source: queue.SourceInner, Helo: st.cfg.Hostname, BodyType: "8BITMIME"}
	id, err := r.e.queue.EnqueueDSN(env, bytes.NewReader(data), m.ID, marks)
	if err != nil {
		// The failures stay unrecorded: the recipients are tried again
		// later, and the bounce is built again then.
		r.e.log.Error("queueing a bounce", "id", m.ID.String(), "error", err)
		return
	}
	r.e.log.Info("dsn queued", "kind", "fail", "action", string(action), "id", m.ID.String(), "dsn", id.String(), "to", m.Envelope.From, "recipients", len(recips))
	r.e.metrics.DSNs.WithLabelValues(string(action)).Inc()
}

// notifyWants applies RFC 3461 NOTIFY: empty means the default (failures
// and delays are reported).
func notifyWants(notify, what string) bool {
	if notify == "" {
		return what != "SUCCESS"
	}
	for _, n := range strings.Split(strings.ToUpper(notify), ",") {
		if n == what {
			return true
		}
	}
	return false
}

func hostOf(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		return strings.Trim(remote[:i], "[]")
	}
	return remote
}
