// Package session is the gateway's side of one SMTP connection: the
// smtpd.Handler that relay/smtpd asks at every stage. It turns each stage
// into a call of relay/policy (the decision the dry runs make too), runs
// the inspection at DATA (relay/inspect), adds the archive copies and our
// Received field, and hands the message to the queue. It keeps the
// snapshot it started with, so a reload never changes the rules in the
// middle of a transaction.
package session

import (
	"bufio"
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/relay/auth"
	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/inspect"
	"github.com/sekisho/sekisho/relay/ops"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/ratelimit"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"
)

// Shared is what every session of a gateway uses, for the life of the
// process.
type Shared struct {
	// Queue takes accepted messages; nil in a dry run (sekisho relay
	// session), where messages are read through every check and dropped.
	Queue   *queue.Spool
	Metrics *ops.Metrics
	Log     *slog.Logger
	// Auth checks SMTP AUTH; it lives as long as the process, so
	// lockouts survive a reload.
	Auth *auth.Authenticator
	// Rates counts relay.rate_limits for the life of the process; nil
	// counts nothing.
	Rates *ratelimit.Limiter
	// Outbound records held messages and tells senders what the
	// outbound rules did; nil in a dry run.
	Outbound OutboundHandler
}

// Snapshot is the configuration a session decides with. A reload builds a
// new one for the sessions that start after it.
type Snapshot struct {
	Hostname       string // greeting, Received
	MaxHeaderBytes int    // relay.limits.max_header_bytes
	Policy         *policy.Policy
	Lines          LinePolicies
	Inspect        *inspect.Inspector // nil: nothing to inspect
	Archive        []ArchiveConfig
	// CountFiles counts the attachments of a message as a mail client
	// shows them (the outbound rules' attachment condition).
	CountFiles func(io.Reader) (int, error)
}

// LinePolicies is relay.bare_line_endings: the line-ending policy per
// message source.
type LinePolicies [rewrite.SourceInternet + 1]smtpd.LinePolicy

// For is the policy for mail from src; an unknown source is held to the
// strictest.
func (p *LinePolicies) For(src rewrite.Source) smtpd.LinePolicy {
	if int(src) < len(p) && src != 0 {
		return p[src]
	}
	return smtpd.LineReject
}

// Listener is what a session knows of the socket it came in on.
type Listener struct {
	Label      string // for logs: "mx/0.0.0.0:25"
	Name       string // relay.listeners[].name, for rules by listener
	Mode       string // mx, submission or smtps
	RequireTLS bool
	// ImplicitTLS stands for TLS the connection does not show: the
	// dry-run session of an smtps listener reads standard input.
	ImplicitTLS bool
}

// Session is one connection's handler.
type Session struct {
	sh   *Shared
	st   *Snapshot
	lis  *Listener
	conn *smtpd.Conn
	id   string
	ip   netip.Addr
	log  *slog.Logger
	// rates is this session's part in the rate limits (nil: none).
	rates *ratelimit.Session

	authUser string
	authMech string // the SASL mechanism of the login, for the milters
	// clientName is the verified reverse-DNS name from the connect
	// checks (relay.inspect.auth.reverse_dns), for the milters.
	clientName string

	from     string
	mailRule string // the rule that accepted MAIL, for the transaction log
	mail     smtpd.MailParams
	rcpts    []rcpt
	msgs     int
}

// rcpt is an accepted recipient: the policy's decision (as the client
// gave it, its alias target, the receive-time rewrite, the rule) and the
// DSN parameters.
type rcpt struct {
	dec    policy.Decision
	params smtpd.RcptParams
}

// New is the handler of a connection accepted on l, deciding with st.
func New(sh *Shared, st *Snapshot, l *Listener, c *smtpd.Conn) *Session {
	ip := c.RemoteAddr().Addr()
	s := &Session{sh: sh, st: st, lis: l, conn: c, id: newID(), ip: ip}
	if sh.Rates != nil {
		s.rates = sh.Rates.Session()
	}
	s.log = sh.Log.With("session", s.id, "client", ip.String())
	return s
}

// SessionID names the session in the live trace as in the logs.
func (s *Session) SessionID() string { return s.id }

// newID is a short random identifier for sessions, for logs only: no
// secret, so math/rand (no system call per session) is enough.
func newID() string {
	var b [5]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

func (s *Session) tls() bool { return s.lis.ImplicitTLS || s.conn.IsTLS() }

// pconn is what the policy knows about this connection.
func (s *Session) pconn() policy.Conn {
	return policy.Conn{IP: s.ip, Helo: s.conn.Hostname(), AuthUser: s.authUser, TLS: s.tls(),
		Mode: s.lis.Mode, RequireTLS: s.lis.RequireTLS, Listener: s.lis.Name, Rates: s.rates}
}

// source is what the rewrite rules and line-ending policy key on.
func (s *Session) source() rewrite.Source { return s.st.Policy.Source(s.pconn()) }

// Connect decides at the greeting: rules that name only networks.
func (s *Session) Connect() smtpd.Reply {
	s.log.Info("connection opened", "kind", "accept", "listener", s.lis.Label, "tls", s.tls())
	if d := s.st.Policy.Connect(s.pconn()); !d.Accepted() {
		return s.refuse("connect", s.ip.String(), d.Verdict)
	}
	if r, ok := s.inspectConnect(); !ok {
		return r
	}
	return smtpd.R(220, "", s.st.Hostname+" ESMTP sekisho")
}

// Helo records the name; the client's address stands in for a missing
// one in Received.
func (s *Session) Helo(name string, extended bool) smtpd.Reply {
	if d := s.st.Policy.Helo(s.pconn(), name); !d.Accepted() {
		return s.refuse("helo", name, d.Verdict)
	}
	if name == "" {
		s.log.Info("bare HELO", "kind", "accept", "extended", extended)
	} else {
		s.log.Debug("helo", "kind", "session", "helo", name, "extended", extended, "tls", s.tls(), "listener", s.lis.Label)
	}
	return smtpd.R(250, "", "Hello "+sanitizeHelo(name, s.ip))
}

func (s *Session) AuthMechanisms() []string {
	if !s.st.Policy.AuthOffered(s.pconn()) {
		return nil
	}
	return s.sh.Auth.Mechanisms()
}

func (s *Session) Auth(mech string) (sasl.Server, error) {
	if c := s.pconn(); !s.st.Policy.AuthOffered(c) {
		r := s.st.Policy.Auth(c, "").Reply
		return nil, &r
	}
	srv, err := s.sh.Auth.Server(mech, s.ip, func(user string) {
		s.authUser, s.authMech = user, mech
		s.log.Info("auth", "kind", "auth", "user", user, "mechanism", mech)
		s.sh.Metrics.AuthResults.WithLabelValues(mech, "ok").Inc()
	})
	if err != nil {
		return nil, err
	}
	return &countedSASL{Server: srv, count: func(result string) {
		s.sh.Metrics.AuthResults.WithLabelValues(mech, result).Inc()
	}}, nil
}

// countedSASL counts a failed exchange under its mechanism.
type countedSASL struct {
	sasl.Server
	count func(result string)
}

func (c *countedSASL) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := c.Server.Next(resp)
	if err != nil {
		result := "failed"
		if r, ok := err.(*smtpd.Reply); ok && r.Temporary() {
			result = "locked_out"
		}
		c.count(result)
	}
	return ch, done, err
}

// path reads an address as the dry runs read it (policy.ParsePath):
// quoting removed, so "user1"@d and user1@d are one address.
func (s *Session) path(stage, a string) (string, bool) {
	p, err := policy.ParsePath("<" + a + ">")
	if err != nil {
		s.log.Info("refused", "kind", "reject", "stage", stage, "arg", a, "code", 501, "reason", err.Error())
		return "", false
	}
	return p, true
}

func (s *Session) Mail(from string, p smtpd.MailParams) smtpd.Reply {
	from, ok := s.path("mail", from)
	if !ok {
		return smtpd.R(501, "5.1.7", "Bad sender address syntax")
	}
	d := s.st.Policy.Mail(s.pconn(), from)
	if !d.Accepted() {
		return s.refuse("mail", from, d.Verdict)
	}
	s.from, s.mailRule, s.mail = from, d.Rule, p
	s.sh.Metrics.Commands.WithLabelValues("mail", "accept", "").Inc()
	return smtpd.R(250, "2.1.0", "Sender <"+from+"> OK")
}

func (s *Session) Rcpt(to string, p smtpd.RcptParams) smtpd.Reply {
	to, ok := s.path("rcpt", to)
	if !ok {
		return smtpd.R(501, "5.1.3", "Bad recipient address syntax")
	}
	d := s.st.Policy.Rcpt(s.pconn(), s.from, to)
	if !d.Accepted() {
		return s.refuse("rcpt", to, d.Verdict)
	}
	s.rcpts = append(s.rcpts, rcpt{dec: d, params: p})
	s.log.Debug("rcpt accepted", "kind", "session", "rcpt", to, "rewritten", d.Rewritten, "rule", d.Rule)
	s.sh.Metrics.Commands.WithLabelValues("rcpt", "accept", "").Inc()
	return smtpd.R(250, "2.1.5", "Recipient <"+to+"> OK")
}

// refuse logs a refusal with the rule that decided and returns the reply.
func (s *Session) refuse(stage, arg string, v guard.Verdict) smtpd.Reply {
	s.log.Info("refused", "kind", "reject", "stage", stage, "arg", arg, "from", s.from,
		"code", v.Code, "enhanced", v.Enhanced, "rule", v.Rule, "reason", v.Reason)
	s.sh.Metrics.Commands.WithLabelValues(stage, v.Action.String(), reasonLabel(v.Rule)).Inc()
	return v.Reply
}

// reasonLabel keeps metric labels bounded: built-in checks by name, every
// configured rule under its name (the configuration bounds them).
func reasonLabel(rule string) string {
	if rule == "" {
		return "other"
	}
	return rule
}

func (s *Session) LinePolicy() smtpd.LinePolicy { return s.st.Lines.For(s.source()) }

// bufReaders pools the bufio.Reader the header is read through: at
// thousands of messages a second, allocating it anew is a measurable
// share of the garbage collector's work.
var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func (s *Session) Data(m *smtpd.MessageReader) smtpd.Reply {
	start := time.Now()
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(m)
	defer func() { br.Reset(nil); bufReaders.Put(br) }()
	src := s.source()
	header, err := rewrite.ReadHeader(br, s.st.MaxHeaderBytes)
	if err != nil {
		return s.dataError(err, "reading the header")
	}
	decs := make([]policy.Decision, len(s.rcpts))
	for i, r := range s.rcpts {
		decs[i] = r.dec
	}
	msg, d := s.st.Policy.Data(s.pconn(), s.from, decs, header)
	if !d.Accepted() {
		reason := "relay_denied"
		switch d.Rule {
		case "builtin:hops":
			reason = "hops"
		case "builtin:header-from":
			reason = "sender_trust"
		case "builtin:rewrite":
			reason = "rewrite"
			s.log.Error("rewrite failed", "kind", "reject", "error", d.Reason)
		}
		s.refuse("data", d.Arg, d.Verdict)
		return s.dataRefuse(reason, d.Reply)
	}
	for _, st := range msg.Trace {
		if st.Rule != "" && st.Before != st.After {
			s.sh.Metrics.Rewrites.WithLabelValues(st.Rule).Inc()
		}
	}
	env := queue.Envelope{
		From: msg.From, ReceivedAt: start, Source: src, ClientIP: s.ip.String(),
		Helo: s.conn.Hostname(), AuthUser: s.authUser, EnvID: s.mail.EnvID, Ret: s.mail.Ret,
		Size: s.mail.Size, BodyType: s.mail.Body, SMTPUTF8: s.mail.SMTPUTF8,
	}
	for _, q := range msg.Rcpts {
		r := s.rcpts[q.Index]
		env.Rcpts = append(env.Rcpts, queue.Recipient{Addr: q.Addr, OrigAddr: r.dec.Arg, ORcpt: r.params.ORcpt,
			Notify: strings.Join(r.params.Notify, ",")})
	}
	s.msgs++
	received := s.receivedField(env.Rcpts, start)
	addressed := len(env.Rcpts)
	// Archive copies after Received: a blind copy is named nowhere.
	env.Rcpts = append(env.Rcpts, archiveCopies(s.st.Archive, src, env.Rcpts)...)
	if s.sh.Queue == nil {
		// A dry-run session (sekisho relay session): read everything
		// through the same checks, keep nothing.
		out, r := s.decideOutbound(msg, received, header, br)
		if r != nil {
			return *r
		}
		defer out.release()
		rest := io.Reader(br)
		if out.body != nil {
			rest = out.body
		}
		if _, err := io.Copy(io.Discard, rest); err != nil {
			return s.dataError(err, "reading the message")
		}
		text := "OK: would be queued (dry run: nothing is kept)"
		if out.d.Applies && out.d.Rule != "" {
			text += "; outbound rule " + asciiOnly(out.d.Rule) + ": " + asciiOnly(out.d.Actions())
		}
		return smtpd.R(250, "2.0.0", text)
	}
	// The header is queued as received: each copy is rewritten for its
	// route at delivery.
	hdr, body, enqueue, held := header, io.Reader(br), s.sh.Queue.Enqueue, ""
	if s.st.Inspect.Applies(src) {
		in, r := s.inspectData(br, received, header, s.txnInfo(env))
		if r != nil {
			return *r
		}
		defer in.done()
		// The inspected header holds our Received field already.
		hdr, body, held, received = in.header, in.body, in.held, ""
		if held != "" {
			enqueue = s.sh.Queue.EnqueueHeld
		}
	}
	out, r := s.decideOutbound(msg, received, hdr, body)
	if r != nil {
		return *r
	}
	defer out.release()
	if out.body != nil {
		body = out.body
	}
	if out.d.Bcc.Header != nil {
		hdr = out.d.Bcc.Header
	}
	env.Rcpts = append(env.Rcpts, copyTo(out.d)...)
	// A milter's quarantine holds it for the administrator already: an
	// approver's decision must not release it past that.
	holdOutbound := out.holds() && held == ""
	if holdOutbound {
		enqueue = s.sh.Queue.EnqueueHeld
	}
	data := &countingReader{r: io.MultiReader(strings.NewReader(received), bytes.NewReader(hdr), body),
		// The reader's text is clean by its rule; a header or body a
		// milter or an outbound rule replaced is not vouched for.
		clean: body == io.Reader(br) && smtpd.IsCleanText([]byte(received)) && smtpd.IsCleanText(hdr)}
	id, err := enqueue(env, data)
	if err != nil {
		return s.dataError(err, "queueing")
	}
	sender := env
	sender.Rcpts = env.Rcpts[:addressed]
	if holdOutbound {
		if err := s.holdOutbound(id, sender, hdr, out.d); err != nil {
			return s.dataError(err, "holding the message for its outbound rule")
		}
	}
	if n := m.Normalized(); n > 0 {
		s.log.Info("bare line endings normalized", "kind", "session", "id", id, "count", n)
	}
	s.logTransaction(id.String(), rewrite.MessageID(header), env, data.n, time.Since(start))
	if held != "" {
		s.log.Warn("quarantined: queued held until `sekisho queue release`", "kind", "receive", "id", id.String(), "reason", held)
	}
	s.logOutbound(id, &out, held != "")
	if holdOutbound {
		s.log.Info("held by the outbound rules", "kind", "receive", "id", id.String(), "from", env.From,
			"reason", out.d.Rule+": "+out.d.Actions())
	}
	if out.d.Bcc.Header != nil && s.sh.Outbound != nil {
		s.sh.Outbound.MovedToBcc(id, sender, hdr, out.d)
	}
	s.sh.Metrics.Messages.WithLabelValues("accepted", "").Inc()
	return smtpd.R(250, "2.0.0", "OK: queued as "+id.String())
}

// dataError maps a failure while reading or storing DATA to a reply.
// Internal failures are always 4xx: a 5xx would make the client bounce mail
// that we simply failed to store. The protocol reads the rest of the
// message whatever is answered.
func (s *Session) dataError(err error, during string) smtpd.Reply {
	var r smtpd.Reply
	reason := "internal"
	var ne net.Error
	switch {
	case errors.Is(err, smtpd.ErrTooLarge):
		r, reason = smtpd.R(552, "5.3.4", "Message too large"), "size"
	case errors.Is(err, smtpd.ErrBareLineEnding):
		r, reason = smtpd.ReplyBareLineEnding, "bare_line_ending"
	case errors.Is(err, smtpd.ErrAborted):
		// The client's RSET (or QUIT, HELO, EHLO) is answered instead.
		r, reason = smtpd.R(451, "4.3.0", "Message abandoned between chunks"), "aborted"
		s.log.Info("message abandoned between BDAT chunks", "kind", "receive", "stage", "data")
		s.sh.Metrics.Messages.WithLabelValues("refused", reason).Inc()
		return r
	case errors.Is(err, rewrite.ErrHeaderTooLarge):
		r, reason = smtpd.R(552, "5.3.4", "Message header too large"), "header_size"
	case errors.Is(err, queue.ErrFull), errors.As(err, new(*queue.StorageError)):
		r, reason = smtpd.R(452, "4.3.1", "Insufficient system storage; try again later"), "queue_full"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		// The protocol answers 421 and closes: the rest of a stalled
		// message is never read as commands.
		r, reason = smtpd.R(421, "4.4.2", "Timeout reading the message; closing"), "timeout"
	default:
		r = smtpd.R(451, "4.3.0", "Local error while "+during+"; try again later")
	}
	if r.Code >= 500 {
		s.log.Info("refused", "kind", "reject", "stage", "data", "reason", reason, "code", r.Code, "enhanced", r.Enhanced)
	} else {
		s.log.Warn("data failed", "kind", "reject", "stage", "data", "during", during, "error", err, "code", r.Code)
	}
	s.sh.Metrics.Messages.WithLabelValues("refused", reason).Inc()
	return r
}

func (s *Session) dataRefuse(reason string, r smtpd.Reply) smtpd.Reply {
	s.log.Info("refused", "kind", "reject", "stage", "data", "reason", reason, "code", r.Code)
	s.sh.Metrics.Messages.WithLabelValues("refused", reason).Inc()
	return r
}

// receivedField is the trace field we prepend (RFC 5321 §4.4). "for" names
// the recipient only when there is one, so Bcc recipients stay private.
func (s *Session) receivedField(rcpts []queue.Recipient, at time.Time) string {
	with := "ESMTP"
	if s.tls() {
		with += "S"
	}
	if s.authUser != "" {
		with += "A"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\t%s with %s id %s.%d",
		sanitizeHelo(s.conn.Hostname(), s.ip), s.ip, policy.TraceBy(s.st.Hostname), with, s.id, s.msgs)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0].Addr)
	}
	fmt.Fprintf(&b, "; %s\r\n", at.Format(time.RFC1123Z))
	return b.String()
}

// sanitizeHelo keeps a client-chosen HELO name from injecting header
// text; without a usable name, the client's address literal stands in.
func sanitizeHelo(h string, ip netip.Addr) string {
	var b strings.Builder
	for _, c := range []byte(h) {
		if c > ' ' && c < 0x7f && c != '(' && c != ')' && c != ';' {
			b.WriteByte(c)
		}
		if b.Len() >= 255 {
			break
		}
	}
	if b.Len() == 0 {
		if ip.Is6() {
			return "[IPv6:" + ip.String() + "]"
		}
		return "[" + ip.String() + "]"
	}
	return b.String()
}

// logTransaction writes the one line per accepted message (the seeds'
// receivelog): who, what, how big, and which rules let it through. Every
// recipient the client gave is listed, two that went to one mailbox too.
func (s *Session) logTransaction(id, messageID string, env queue.Envelope, size int64, took time.Duration) {
	rcpts := make([]string, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rcpts[i] = r.Addr
	}
	orig := make([]string, len(s.rcpts))
	var rules []string
	seen := map[string]bool{s.mailRule: true}
	if s.mailRule != "" {
		rules = append(rules, s.mailRule)
	}
	for i, r := range s.rcpts {
		orig[i] = r.dec.Arg
		if !seen[r.dec.Rule] {
			seen[r.dec.Rule] = true
			rules = append(rules, r.dec.Rule)
		}
	}
	s.log.Info("accepted", "kind", "receive", "id", id, "helo", env.Helo, "auth", env.AuthUser,
		"from", env.From, "orig_from", s.from, "rcpts", strings.Join(rcpts, ","), "orig_rcpts", strings.Join(orig, ","),
		"size", size, "source", env.Source, "tls", s.tls(), "verdict", "accept", "rules", strings.Join(rules, ","),
		"message_id", messageID, "took_ms", took.Milliseconds())
}

// countingReader counts the bytes that pass, for the log, and tells the
// queue whether they are clean text (queue.CleanText).
type countingReader struct {
	r     io.Reader
	n     int64
	clean bool
}

func (c *countingReader) CleanText() bool { return c.clean }

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *Session) Reset() {
	s.from, s.rcpts, s.mail = "", nil, smtpd.MailParams{}
}

func (s *Session) Close() {
	if s.rates != nil {
		s.rates.Release()
	}
	s.log.Info("connection closed", "kind", "accept", "listener", s.lis.Label, "messages", s.msgs)
}
