package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"
)

// session is the gateway's side of one SMTP connection: relay/smtpd runs
// the protocol and asks it one decision per stage, which relay/policy
// makes (the dry runs call the same functions). It keeps the policy
// snapshot it started with, so a reload never changes the rules in the
// middle of a transaction.
type session struct {
	e    *Engine
	st   *state
	lis  *listener
	conn *smtpd.Conn
	id   string
	ip   netip.Addr
	log  *slog.Logger

	authUser string
	// clientName is the verified reverse-DNS name from the connect
	// checks (relay.inspect.auth.reverse_dns), for the milters.
	clientName string
	// implicitTLS stands for TLS the connection does not show: the
	// dry-run session of an smtps listener reads standard input.
	implicitTLS bool

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

func (s *session) tls() bool { return s.implicitTLS || s.conn.IsTLS() }

// pconn is what the policy knows about this connection.
func (s *session) pconn() policy.Conn {
	return policy.Conn{IP: s.ip, Helo: s.conn.Hostname(), AuthUser: s.authUser, TLS: s.tls(),
		Mode: s.lis.cfg.Mode, RequireTLS: s.lis.cfg.RequireTLS, Listener: s.lis.cfg.Name}
}

// source is what the rewrite rules and line-ending policy key on.
func (s *session) source() rewrite.Source { return s.st.pol.Source(s.pconn()) }

// reply turns a guard verdict into the protocol's reply.
func reply(v guard.Verdict) smtpd.Reply {
	return smtpd.Reply{Code: v.Code, Enhanced: v.Enhanced, Text: v.Text}
}

// Connect decides at the greeting: rules that name only networks.
func (s *session) Connect() smtpd.Reply {
	s.log.Info("connection opened", "kind", "accept", "listener", s.lis.name, "tls", s.tls())
	if d := s.st.pol.Connect(s.pconn()); !d.Accepted() {
		return s.refuse("connect", s.ip.String(), d.Verdict)
	}
	if r, ok := s.inspectConnect(); !ok {
		return r
	}
	return smtpd.R(220, "", s.st.cfg.Hostname+" ESMTP sekisho")
}

// Helo records the name; the client's address stands in for a missing
// one in Received.
func (s *session) Helo(name string, extended bool) smtpd.Reply {
	if d := s.st.pol.Helo(s.pconn(), name); !d.Accepted() {
		return s.refuse("helo", name, d.Verdict)
	}
	if name == "" {
		s.log.Info("bare HELO", "kind", "accept", "extended", extended)
	} else {
		s.log.Debug("helo", "helo", name, "extended", extended, "tls", s.tls(), "listener", s.lis.name)
	}
	return smtpd.R(250, "", "Hello "+sanitizeHelo(name, s.ip))
}

func (s *session) AuthMechanisms() []string {
	return s.e.auth.Mechanisms(s.st.pol.AuthOffered(s.pconn()))
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if c := s.pconn(); !s.st.pol.AuthOffered(c) {
		r := reply(s.st.pol.Auth(c, "").Verdict)
		return nil, &r
	}
	srv, err := s.e.auth.Server(mech, s.ip, func(user string) {
		s.authUser = user
		s.log.Info("auth", "kind", "auth", "user", user, "mechanism", mech)
		s.e.metrics.AuthResults.WithLabelValues(mech, "ok").Inc()
	})
	if err != nil {
		return nil, err
	}
	return &countedSASL{Server: srv, count: func(result string) {
		s.e.metrics.AuthResults.WithLabelValues(mech, result).Inc()
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
func (s *session) path(stage, a string) (string, bool) {
	p, err := policy.ParsePath("<" + a + ">")
	if err != nil {
		s.log.Info("refused", "kind", "reject", "stage", stage, "arg", a, "code", 501, "reason", err.Error())
		return "", false
	}
	return p, true
}

func (s *session) Mail(from string, p smtpd.MailParams) smtpd.Reply {
	from, ok := s.path("mail", from)
	if !ok {
		return smtpd.R(501, "5.1.7", "Bad sender address syntax")
	}
	d := s.st.pol.Mail(s.pconn(), from)
	if !d.Accepted() {
		return s.refuse("mail", from, d.Verdict)
	}
	s.from, s.mailRule, s.mail = from, d.Rule, p
	s.e.metrics.Commands.WithLabelValues("mail", "accept", "").Inc()
	return smtpd.R(250, "2.1.0", "Sender <"+from+"> OK")
}

func (s *session) Rcpt(to string, p smtpd.RcptParams) smtpd.Reply {
	to, ok := s.path("rcpt", to)
	if !ok {
		return smtpd.R(501, "5.1.3", "Bad recipient address syntax")
	}
	d := s.st.pol.Rcpt(s.pconn(), s.from, to)
	if !d.Accepted() {
		return s.refuse("rcpt", to, d.Verdict)
	}
	s.rcpts = append(s.rcpts, rcpt{dec: d, params: p})
	s.log.Debug("rcpt accepted", "rcpt", to, "rewritten", d.Rewritten, "rule", d.Rule)
	s.e.metrics.Commands.WithLabelValues("rcpt", "accept", "").Inc()
	return smtpd.R(250, "2.1.5", "Recipient <"+to+"> OK")
}

// refuse logs a refusal with the rule that decided and returns the reply.
func (s *session) refuse(stage, arg string, v guard.Verdict) smtpd.Reply {
	s.log.Info("refused", "kind", "reject", "stage", stage, "arg", arg, "from", s.from,
		"code", v.Code, "enhanced", v.Enhanced, "rule", v.Rule, "reason", v.Reason)
	s.e.metrics.Commands.WithLabelValues(stage, v.Action.String(), reasonLabel(v.Rule)).Inc()
	return reply(v)
}

// reasonLabel keeps metric labels bounded: built-in checks by name, every
// configured rule under its name (the configuration bounds them).
func reasonLabel(rule string) string {
	if rule == "" {
		return "other"
	}
	return rule
}

func (s *session) LinePolicy() smtpd.LinePolicy { return s.st.linePolicy(s.source()) }

// bufReaders pools the bufio.Reader the header is read through: at
// thousands of messages a second, allocating it anew is a measurable
// share of the garbage collector's work.
var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func (s *session) Data(m *smtpd.MessageReader) smtpd.Reply {
	start := time.Now()
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(m)
	defer func() { br.Reset(nil); bufReaders.Put(br) }()
	src := s.source()
	header, err := rewrite.ReadHeader(br, s.st.cfg.Limits.MaxHeaderBytes)
	if err != nil {
		return s.dataError(err, "reading the header")
	}
	decs := make([]policy.Decision, len(s.rcpts))
	for i, r := range s.rcpts {
		decs[i] = r.dec
	}
	msg, d := s.st.pol.Data(s.pconn(), s.from, decs, header)
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
		return s.dataRefuse(reason, reply(d.Verdict))
	}
	for _, st := range msg.Trace {
		if st.Rule != "" && st.Before != st.After {
			s.e.metrics.Rewrites.WithLabelValues(st.Rule).Inc()
		}
	}
	env := queue.Envelope{
		From: msg.From, ReceivedAt: start, Source: src.String(), ClientIP: s.ip.String(),
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
	// Archive copies after Received: a blind copy is named nowhere.
	env.Rcpts = append(env.Rcpts, archiveCopies(s.st.cfg.Archive, src, env.Rcpts)...)
	if s.e.queue == nil {
		// A dry-run session (sekisho relay session): read everything
		// through the same checks, keep nothing.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return s.dataError(err, "reading the message")
		}
		return smtpd.R(250, "2.0.0", "OK: would be queued (dry run: nothing is kept)")
	}
	hdr, body, enqueue, held := msg.Header, io.Reader(br), s.e.queue.Enqueue, ""
	if s.st.inspect.Applies(src.String()) {
		in, r := s.inspectData(br, header, msg.Header, s.txnInfo(env))
		if r != nil {
			return *r
		}
		defer in.done()
		hdr, body, held = in.header, in.body, in.held
		if held != "" {
			enqueue = s.e.queue.EnqueueHeld
		}
	}
	data := &countingReader{r: io.MultiReader(strings.NewReader(received), bytes.NewReader(hdr), body)}
	id, err := enqueue(env, data)
	if err != nil {
		return s.dataError(err, "queueing")
	}
	if m.Normalized > 0 {
		s.log.Info("bare line endings normalized", "id", id, "count", m.Normalized)
	}
	s.logTransaction(id.String(), env, data.n, time.Since(start))
	if held != "" {
		s.log.Warn("quarantined: queued held until `sekisho queue release`", "kind", "receive", "id", id.String(), "reason", held)
	}
	s.e.metrics.Messages.WithLabelValues("accepted", "").Inc()
	return smtpd.R(250, "2.0.0", "OK: queued as "+id.String())
}

// dataError maps a failure while reading or storing DATA to a reply.
// Internal failures are always 4xx: a 5xx would make the client bounce mail
// that we simply failed to store. The protocol reads the rest of the
// message whatever is answered.
func (s *session) dataError(err error, during string) smtpd.Reply {
	var r smtpd.Reply
	reason := "internal"
	var ne net.Error
	switch {
	case errors.Is(err, smtpd.ErrTooLarge):
		r, reason = smtpd.R(552, "5.3.4", "Message too large"), "size"
	case errors.Is(err, smtpd.ErrBareLineEnding):
		r = smtpd.R(550, "5.6.0", "Message refused: bare CR, bare LF or NUL found; lines must end with CRLF")
		reason = "bare_line_ending"
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
	s.e.metrics.Messages.WithLabelValues("refused", reason).Inc()
	return r
}

func (s *session) dataRefuse(reason string, r smtpd.Reply) smtpd.Reply {
	s.log.Info("refused", "kind", "reject", "stage", "data", "reason", reason, "code", r.Code)
	s.e.metrics.Messages.WithLabelValues("refused", reason).Inc()
	return r
}

// receivedField is the trace field we prepend (RFC 5321 §4.4). "for" names
// the recipient only when there is one, so Bcc recipients stay private.
func (s *session) receivedField(rcpts []queue.Recipient, at time.Time) string {
	with := "ESMTP"
	if s.tls() {
		with += "S"
	}
	if s.authUser != "" {
		with += "A"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (sekisho) with %s id %s.%d",
		sanitizeHelo(s.conn.Hostname(), s.ip), s.ip, s.st.cfg.Hostname, with, s.id, s.msgs)
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
func (s *session) logTransaction(id string, env queue.Envelope, size int64, took time.Duration) {
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
		"took_ms", took.Milliseconds())
}

// countingReader counts the bytes that pass, for the log.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *session) Reset() {
	s.from, s.rcpts, s.mail = "", nil, smtpd.MailParams{}
}

func (s *session) Close() {
	s.log.Info("connection closed", "kind", "accept", "messages", s.msgs)
}
