package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/relay/guard"
	"github.com/sekisho/sekisho/relay/policy"
	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
)

// session is one SMTP transaction stream on one connection. It keeps the
// policy snapshot it started with, so a reload never changes the rules in
// the middle of a transaction.
type session struct {
	e    *Engine
	st   *state
	lis  *listener
	conn *smtp.Conn
	id   string
	ip   netip.Addr
	tls  bool
	log  *slog.Logger

	authUser string

	fromSet  bool
	from     string
	mailRule string // the rule that accepted MAIL, for the transaction log
	envFrom  string // the sender after the receive-time rewrite
	mailOpts smtp.MailOptions
	rcpts    []rcpt
	msgs     int
}

// rcpt is an accepted recipient: the policy's decision (as the client
// gave it, its alias target, the receive-time rewrite, the rule) and the
// DSN options.
type rcpt struct {
	dec  policy.Decision
	opts smtp.RcptOptions
}

// conn is what the policy knows about this connection.
func (s *session) pconn() policy.Conn {
	return policy.Conn{IP: s.ip, Helo: s.conn.Hostname(), AuthUser: s.authUser, TLS: s.tls,
		Mode: s.lis.cfg.Mode, RequireTLS: s.lis.cfg.RequireTLS, Listener: s.lis.cfg.Name}
}

// source is what the rewrite rules and line-ending policy key on.
func (s *session) source() rewrite.Source { return s.st.pol.Source(s.pconn()) }

func (s *session) AuthMechanisms() []string {
	return s.e.auth.Mechanisms(s.st.pol.AuthOffered(s.pconn()))
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if c := s.pconn(); !s.st.pol.AuthOffered(c) {
		// The policy's refusal (523), also where the server library
		// itself would allow AUTH (the dry-run session on stdin).
		return nil, s.st.pol.Auth(c, "").SMTPError()
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
		if se, ok := err.(*smtp.SMTPError); ok && se.Temporary() {
			result = "locked_out"
		}
		c.count(result)
	}
	return ch, done, err
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.fromSet {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command: sender already given (RSET first)"}
	}
	d := s.st.pol.Mail(s.pconn(), from)
	if !d.Accepted() {
		return s.refuse("mail", from, d.Verdict)
	}
	s.fromSet, s.from, s.mailRule, s.envFrom = true, from, d.Rule, d.Rewritten
	if opts != nil {
		s.mailOpts = *opts
	}
	s.e.metrics.Commands.WithLabelValues("mail", "accept", "").Inc()
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !s.fromSet {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
	}
	d := s.st.pol.Rcpt(s.pconn(), s.from, to)
	if !d.Accepted() {
		return s.refuse("rcpt", to, d.Verdict)
	}
	r := rcpt{dec: d}
	if opts != nil {
		r.opts = *opts
	}
	s.rcpts = append(s.rcpts, r)
	s.log.Debug("rcpt accepted", "rcpt", to, "rewritten", d.Rewritten, "rule", d.Rule)
	s.e.metrics.Commands.WithLabelValues("rcpt", "accept", "").Inc()
	return nil
}

// refuse logs a refusal with the rule that decided and returns the reply.
func (s *session) refuse(stage, arg string, v guard.Verdict) error {
	s.log.Info("refused", "kind", "reject", "stage", stage, "arg", arg, "from", s.from,
		"code", v.Code, "enhanced", v.Enhanced, "rule", v.Rule, "reason", v.Reason)
	s.e.metrics.Commands.WithLabelValues(stage, v.Action.String(), reasonLabel(v.Rule)).Inc()
	return v.Err()
}

// reasonLabel keeps metric labels bounded: built-in checks by name, every
// configured rule under its name (the configuration bounds them).
func reasonLabel(rule string) string {
	if rule == "" {
		return "other"
	}
	return rule
}

func (s *session) Data(r io.Reader) error {
	start := time.Now()
	if len(s.rcpts) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "RCPT first"}
	}
	src := s.source()
	dr := getDataReader(r, s.st.linePolicy(src))
	defer putDataReader(dr)
	cr, br := dr.cr, dr.br
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
		io.Copy(io.Discard, br)
		var reason string
		switch d.Rule {
		case "builtin:hops":
			reason = "hops"
		case "builtin:header-from":
			reason = "sender_trust"
		case "builtin:rewrite":
			reason = "rewrite"
			s.log.Error("rewrite failed", "kind", "reject", "error", d.Reason)
		default:
			reason = "relay_denied"
		}
		s.refuse("data", d.Arg, d.Verdict)
		return s.dataRefuse(reason, d.SMTPError())
	}
	for _, st := range msg.Trace {
		if st.Rule != "" && st.Before != st.After {
			s.e.metrics.Rewrites.WithLabelValues(st.Rule).Inc()
		}
	}
	env := queue.Envelope{
		From:       msg.From,
		ReceivedAt: start,
		Source:     src.String(),
		ClientIP:   s.ip.String(),
		Helo:       s.conn.Hostname(),
		AuthUser:   s.authUser,
		EnvID:      s.mailOpts.EnvelopeID,
		Ret:        string(s.mailOpts.Return),
		Size:       s.mailOpts.Size,
		BodyType:   string(s.mailOpts.Body),
		SMTPUTF8:   s.mailOpts.UTF8,
	}
	for _, q := range msg.Rcpts {
		r := s.rcpts[q.Index]
		qr := queue.Recipient{Addr: q.Addr, OrigAddr: r.dec.Arg, ORcpt: r.opts.OriginalRecipient}
		for _, n := range r.opts.Notify {
			qr.Notify = appendComma(qr.Notify, string(n))
		}
		env.Rcpts = append(env.Rcpts, qr)
	}
	s.msgs++
	received := s.receivedField(env.Rcpts, start)
	if s.e.queue == nil {
		// A dry-run session (sekisho relay session): read everything
		// through the same checks, keep nothing.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return s.dataError(err, "reading the message")
		}
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
			Message: "OK: would be queued (dry run: nothing is kept)"}
	}
	data := &countingReader{r: io.MultiReader(strings.NewReader(received), bytes.NewReader(msg.Header), br)}
	id, err := s.e.queue.Enqueue(env, data)
	if err != nil {
		io.Copy(io.Discard, br)
		return s.dataError(err, "queueing")
	}
	if cr.normalized > 0 {
		s.log.Info("bare line endings normalized", "id", id, "count", cr.normalized)
	}
	s.logTransaction(id.String(), env, data.n, time.Since(start))
	s.e.metrics.Messages.WithLabelValues("accepted", "").Inc()
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + id.String()}
}

func appendComma(list, v string) string {
	if list == "" {
		return v
	}
	return list + "," + v
}

// dataError maps a failure while reading or storing DATA to a reply.
// Internal failures are always 4xx: a 5xx would make the client bounce mail
// that we simply failed to store.
func (s *session) dataError(err error, during string) error {
	var reply *smtp.SMTPError
	reason := "internal"
	var ne net.Error
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		s.e.metrics.Messages.WithLabelValues("refused", "size").Inc()
		s.log.Info("refused", "kind", "reject", "stage", "data", "reason", "message too large")
		return smtp.ErrDataTooLarge
	case errors.Is(err, errBareLineEnding):
		reply = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Message refused: bare CR or LF found; lines must end with CRLF"}
		reason = "bare_line_ending"
	case errors.Is(err, rewrite.ErrHeaderTooLarge):
		reply = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message header too large"}
		reason = "header_size"
	case errors.Is(err, queue.ErrFull), errors.As(err, new(*queue.StorageError)):
		reply = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
			Message: "Insufficient system storage; try again later"}
		reason = "queue_full"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		// The rest of a stalled DATA must never be read as commands
		// (go-smtp issue 196): answer and close here, before go-smtp
		// would go back to reading command lines.
		reply = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout reading the message; closing"}
		reason = "timeout"
		nc := s.conn.Conn()
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, "421 4.4.2 Timeout reading the message; closing\r\n")
		nc.Close()
	default:
		reply = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "Local error while " + during + "; try again later"}
	}
	s.log.Warn("data failed", "kind", "reject", "stage", "data", "during", during, "error", err, "code", reply.Code)
	s.e.metrics.Messages.WithLabelValues("refused", reason).Inc()
	return reply
}

func (s *session) dataRefuse(reason string, e *smtp.SMTPError) error {
	s.log.Info("refused", "kind", "reject", "stage", "data", "reason", reason, "code", e.Code)
	s.e.metrics.Messages.WithLabelValues("refused", reason).Inc()
	return e
}

// receivedField is the trace field we prepend (RFC 5321 §4.4). "for" names
// the recipient only when there is one, so Bcc recipients stay private.
func (s *session) receivedField(rcpts []queue.Recipient, at time.Time) string {
	with := "ESMTP"
	if s.tls {
		with += "S"
	}
	if s.authUser != "" {
		with += "A"
	}
	helo := sanitizeHelo(s.conn.Hostname())
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (sekisho) with %s id %s.%d",
		helo, s.ip, s.st.cfg.Hostname, with, s.id, s.msgs)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0].Addr)
	}
	fmt.Fprintf(&b, "; %s\r\n", at.Format(time.RFC1123Z))
	return b.String()
}

// sanitizeHelo keeps a client-chosen HELO name from injecting header text.
func sanitizeHelo(h string) string {
	if h == "" {
		return "unknown"
	}
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
		return "unknown"
	}
	return b.String()
}

// logTransaction writes the one line per accepted message (the seeds'
// receivelog): who, what, how big, and which rules let it through.
func (s *session) logTransaction(id string, env queue.Envelope, size int64, took time.Duration) {
	rcpts := make([]string, len(env.Rcpts))
	orig := make([]string, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rcpts[i], orig[i] = r.Addr, r.OrigAddr
	}
	var rules []string
	seen := map[string]bool{s.mailRule: true}
	if s.mailRule != "" {
		rules = append(rules, s.mailRule)
	}
	for _, r := range s.rcpts {
		if !seen[r.dec.Rule] {
			seen[r.dec.Rule] = true
			rules = append(rules, r.dec.Rule)
		}
	}
	s.log.Info("accepted", "kind", "receive", "id", id, "helo", env.Helo, "auth", env.AuthUser,
		"from", env.From, "orig_from", s.from, "rcpts", strings.Join(rcpts, ","), "orig_rcpts", strings.Join(orig, ","),
		"size", size, "source", env.Source, "tls", s.tls, "verdict", "accept", "rules", strings.Join(rules, ","),
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
	s.fromSet, s.from, s.envFrom, s.rcpts = false, "", "", nil
	s.mailOpts = smtp.MailOptions{}
}

func (s *session) Logout() error { return nil }
