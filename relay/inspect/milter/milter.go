// Package milter is the before-queue milter client: it runs one received message through the configured milters (rspamd, clamav-milter, ...) and folds their answers into one verdict with header edits.
package milter

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/relay/smtpd"
	"github.com/sekisho/sekisho/rewrite"

	"github.com/emersion/go-message/textproto"
	gomilter "github.com/emersion/go-milter"
)

// Action is the verdict on a message.
type Action int

// The verdicts, in rising order of severity: a later milter can only make
// the verdict stricter.
const (
	Accept     Action = iota // queue the message (with the header edits)
	Quarantine               // queue it, but hold it; Result.Reason says why
	Discard                  // answer 250 and drop it
	TempFail                 // answer 4xx
	Reject                   // answer 5xx
)

func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Quarantine:
		return "quarantine"
	case Discard:
		return "discard"
	case TempFail:
		return "tempfail"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// EditOp says what a HeaderEdit does.
type EditOp int

// Header edit operations (smfi_addheader, smfi_chgheader, smfi_insheader).
const (
	AddHeader    EditOp = iota // append at the end of the header
	ChangeHeader               // replace the Index-th field of Name; an empty Value deletes it
	InsertHeader               // insert at position Index (0 is the top)
)

// HeaderEdit is one header change a milter asked for.
type HeaderEdit struct {
	Op    EditOp
	Name  string
	Value string
	Index int // 1-based per name for ChangeHeader; position for InsertHeader
}

// Transaction is what the milters see of one message.
type Transaction struct {
	ClientIP   netip.Addr
	ClientPort uint16
	ClientName string // verified reverse DNS name, or "" (sent as "[ip]")
	Helo       string
	From       string // envelope sender without brackets; "" is the null sender
	Rcpts      []string
	QueueID    string // sent as the "i" macro, which milters put in their logs
	// AuthUser is the SMTP AUTH login, "" when unauthenticated; sent as
	// the {auth_authen} macro, which rspamd uses to skip its spam checks.
	AuthUser string
	// AuthType is the SASL mechanism of the login ({auth_type}).
	AuthType string
	// TLS is the session's TLS, when it has one ({tls_version},
	// {cipher}, {cipher_bits}).
	TLS *tls.ConnectionState
	// Source is the kind of client; milters limited to other sources
	// are skipped.
	Source rewrite.Source
	// Trace is our Received field ("Received: ...\r\n"), which the
	// milters see as the header's first field, as Postfix sends its own:
	// the positions of their header edits count it.
	Trace string
	// Header is the header block as received (CRLF line ends, with or
	// without the empty line that ends it); Body, the rest, is read from
	// its start for every milter.
	Header []byte
	Body   io.ReadSeeker
}

// Result is the combined verdict of all milters.
type Result struct {
	Action Action
	Reply  smtpd.Reply // for TempFail and Reject
	Reason string      // quarantine reason
	Milter string      // the milter that decided a non-accept verdict
	Edits  []HeaderEdit
	// Failed are the milters that failed, each with what became of the
	// message, for the log.
	Failed []Failure
}

// Failure is one milter that could not give a verdict.
type Failure struct {
	Milter string
	Err    error
	// Deferred: on_failure tempfail, the message was answered 451;
	// otherwise on_failure accept passed the milter over.
	Deferred bool
}

// Client runs transactions through a list of milters, in order.
type Client struct {
	milters  []Config
	hostname string
	// old[i] is set once milter i turned out to speak protocol version 2,
	// so later conversations do not pay a second connection.
	old []atomic.Bool
}

// New returns a client for the milters in cfgs (each validated by the
// caller); hostname is sent as the "j" macro.
func New(hostname string, cfgs []Config) *Client {
	c := &Client{hostname: hostname}
	for _, m := range cfgs {
		c.milters = append(c.milters, m.withDefaults())
	}
	c.old = make([]atomic.Bool, len(c.milters))
	return c
}

// Check runs t through every milter. It stops at the first reject,
// tempfail or discard; header edits of the milters that accepted are
// collected in order. A milter that fails follows its on_failure policy.
// Check never returns later than ctx's deadline plus a close.
func (c *Client) Check(ctx context.Context, t Transaction) Result {
	res := Result{Action: Accept}
	if t.Body == nil {
		t.Body = bytes.NewReader(nil)
	}
	size := int64(-1)
	for i, m := range c.milters {
		if !m.takes(t.Source) {
			continue
		}
		if m.MaxMessageBytes > 0 {
			if size < 0 {
				n, err := t.Body.Seek(0, io.SeekEnd)
				if err != nil {
					n = 0 // unknown: the milter is asked, and the rewind below reports the error
				}
				size = int64(len(t.Header)) + n
			}
			if size > m.MaxMessageBytes {
				continue
			}
		}
		r, err := c.checkOne(ctx, m, &c.old[i], t)
		if err != nil {
			f := Failure{Milter: m.Name, Err: err, Deferred: m.OnFailure != OnFailureAccept}
			res.Failed = append(res.Failed, f)
			if !f.Deferred {
				continue
			}
			res.Action = TempFail
			res.Reply = smtpd.R(451, "4.7.0", "Content filter unavailable, try again later")
			res.Milter = m.Name
			res.Edits = nil
			return res
		}
		res.Edits = append(res.Edits, r.Edits...)
		if r.Action > res.Action {
			res.Action, res.Reply, res.Reason, res.Milter = r.Action, r.Reply, r.Reason, m.Name
		}
		if r.Action >= Discard {
			res.Edits = nil
			return res
		}
	}
	return res
}

// checkOne is one milter conversation. A nil error means the milter gave a
// verdict; any error is a failure for the on_failure policy.
func (c *Client) checkOne(ctx context.Context, m Config, old *atomic.Bool, t Transaction) (_ Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.TotalTimeout)
	defer cancel()
	network, address, _ := splitAddress(m.Address)
	d := &ctxDialer{ctx: ctx, d: net.Dialer{Timeout: m.ConnectTimeout}, negotiation: m.ConnectTimeout}
	defer func() {
		d.close()
		if ctx.Err() != nil && err != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
	}()
	proto := offeredProtocol
	if old.Load() {
		proto &= v2Protocol
	}
	s, err := session(d, network, address, m.Timeout, proto)
	if errors.Is(err, gomilter.ErrUnsupportedMilterVersion) && proto != offeredProtocol&v2Protocol && ctx.Err() == nil {
		// A milter of protocol version 2 cannot take the steps of version
		// 6 we offer; the library only downgrades when we offer none of
		// them, so ask again with the version 2 subset.
		d.close()
		old.Store(true)
		s, err = session(d, network, address, m.Timeout, offeredProtocol&v2Protocol)
	}
	if err != nil {
		return Result{}, err
	}
	d.negotiated()
	defer s.Close()
	return c.converse(s, t)
}

// offeredProtocol is every step we let a milter skip or leave
// unanswered. libmilter-based milters (clamav-milter) hang up at
// negotiation when they ask to skip a step the MTA did not offer.
// Leading-space header values are not offered: we send values without it.
const offeredProtocol = gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom |
	gomilter.OptNoRcptTo | gomilter.OptNoBody | gomilter.OptNoHeaders | gomilter.OptNoEOH |
	gomilter.OptNoUnknown | gomilter.OptNoData | gomilter.OptSkip | gomilter.OptNoHeaderReply |
	gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
	gomilter.OptNoRcptReply | gomilter.OptNoDataReply | gomilter.OptNoUnknownReply |
	gomilter.OptNoEOHReply | gomilter.OptNoBodyReply

// v2Protocol are the protocol steps of milter protocol version 2.
const v2Protocol gomilter.OptProtocol = 0x7f

// session dials and negotiates.
func session(d *ctxDialer, network, address string, timeout time.Duration, proto gomilter.OptProtocol) (*gomilter.ClientSession, error) {
	cl := gomilter.NewClientWithOptions(network, address, gomilter.ClientOptions{
		Dialer:       d,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// Only the actions we carry out; a milter that needs more (body
		// replacement, recipient changes) must refuse at negotiation
		// rather than have its changes silently dropped.
		ActionMask:   gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine,
		ProtocolMask: proto,
	})
	return cl.Session()
}

// converse sends the stages in order; the first answer other than
// continue ends the conversation.
func (c *Client) converse(s *gomilter.ClientSession, t Transaction) (Result, error) {
	family, addr, name := gomilter.FamilyUnknown, "", "unknown"
	if t.ClientIP.IsValid() {
		family, addr, name = gomilter.FamilyInet, t.ClientIP.Unmap().String(), "["+t.ClientIP.Unmap().String()+"]"
		if t.ClientIP.Unmap().Is6() {
			family = gomilter.FamilyInet6
		}
	}
	if t.ClientName != "" {
		name = t.ClientName
	}
	for _, st := range c.macros(t, addr) {
		if len(st.kv) > 0 {
			if err := s.Macros(st.code, st.kv...); err != nil {
				return Result{}, err
			}
		}
		var act *gomilter.Action
		var err error
		switch st.code {
		case gomilter.CodeConn:
			act, err = s.Conn(name, family, t.ClientPort, addr)
		case gomilter.CodeHelo:
			act, err = s.Helo(t.Helo)
		case gomilter.CodeMail:
			act, err = s.Mail(t.From, nil)
		case gomilter.CodeRcpt:
			act, err = s.Rcpt(st.rcpt, nil)
		}
		if err != nil || act.Code != gomilter.ActContinue {
			return verdict(act, err)
		}
	}
	hdr, err := textproto.ReadHeader(bufio.NewReader(io.MultiReader(strings.NewReader(t.Trace), bytes.NewReader(t.Header), strings.NewReader("\r\n"))))
	if err != nil {
		return Result{}, fmt.Errorf("reading the header: %w", err)
	}
	for f := hdr.Fields(); f.Next(); {
		act, err := s.HeaderField(f.Key(), rawValue(f))
		if err != nil || act.Code != gomilter.ActContinue {
			return verdict(act, err)
		}
	}
	if act, err := s.HeaderEnd(); err != nil || act.Code != gomilter.ActContinue {
		return verdict(act, err)
	}
	if _, err := t.Body.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("rewinding the body: %w", err)
	}
	mods, act, err := s.BodyReadFrom(t.Body)
	if err != nil {
		return Result{}, err
	}
	r, err := verdict(act, nil)
	if err != nil {
		return r, err
	}
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActAddHeader, gomilter.ActChangeHeader, gomilter.ActInsertHeader:
			if err := checkEdit(m.HeaderName, m.HeaderValue); err != nil {
				return Result{}, err
			}
		}
		switch m.Code {
		case gomilter.ActAddHeader:
			r.Edits = append(r.Edits, HeaderEdit{Op: AddHeader, Name: m.HeaderName, Value: m.HeaderValue})
		case gomilter.ActChangeHeader:
			r.Edits = append(r.Edits, HeaderEdit{Op: ChangeHeader, Name: m.HeaderName, Value: m.HeaderValue, Index: int(m.HeaderIndex)})
		case gomilter.ActInsertHeader:
			r.Edits = append(r.Edits, HeaderEdit{Op: InsertHeader, Name: m.HeaderName, Value: m.HeaderValue, Index: int(m.HeaderIndex)})
		case gomilter.ActQuarantine:
			if r.Action < Quarantine {
				r.Action, r.Reason = Quarantine, m.Reason
			}
		default:
			// Not negotiated; a milter that sends it anyway breaks the
			// protocol, and its verdict cannot be trusted.
			return Result{}, fmt.Errorf("milter sent modification %q that was not negotiated", rune(m.Code))
		}
	}
	return r, nil
}

// rawValue is the field value as received (folding kept, the one space
// after the colon dropped), which is what milters that verify signatures
// need.
func rawValue(f textproto.HeaderFields) string {
	raw, err := f.Raw()
	if err != nil {
		return f.Value()
	}
	v := raw[bytes.IndexByte(raw, ':')+1:]
	v = bytes.TrimSuffix(v, []byte("\r\n"))
	v = bytes.TrimPrefix(v, []byte(" "))
	return string(v)
}

// verdict maps a final action to a Result.
func verdict(act *gomilter.Action, err error) (Result, error) {
	if err != nil {
		return Result{}, err
	}
	switch act.Code {
	case gomilter.ActContinue, gomilter.ActAccept:
		return Result{Action: Accept}, nil
	case gomilter.ActDiscard:
		return Result{Action: Discard}, nil
	case gomilter.ActReject:
		return Result{Action: Reject, Reply: smtpd.R(550, "5.7.1", "Message rejected by content filter")}, nil
	case gomilter.ActTempFail:
		return Result{Action: TempFail, Reply: smtpd.R(451, "4.7.1", "Message deferred by content filter, try again later")}, nil
	case gomilter.ActReplyCode:
		return replyCode(act.SMTPCode, act.SMTPText)
	}
	return Result{}, fmt.Errorf("unexpected action %q", rune(act.Code))
}

// replyCode turns a milter's own SMTP reply into a verdict. A code that is
// not 4xx or 5xx breaks the protocol (smfi_setreply allows only those).
func replyCode(code int, text string) (Result, error) {
	var r Result
	switch code / 100 {
	case 4:
		r.Action = TempFail
	case 5:
		r.Action = Reject
	default:
		return Result{}, fmt.Errorf("reply code %d is neither 4xx nor 5xx", code)
	}
	// Multi-line replies come as "550-5.7.1 a\r\n550 5.7.1 b"; keep the text
	// of every line, joined, for the one-line answer.
	var parts []string
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if i > 0 && len(line) >= 4 {
			line = line[4:]
		}
		parts = append(parts, strings.TrimSpace(line))
	}
	// The text goes back to the SMTP client: no control characters.
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.Join(parts, " "))
	if f := strings.Fields(text); len(f) > 0 && isEnhanced(f[0], code/100) {
		r.Reply.Enhanced = f[0]
		text = strings.TrimSpace(strings.TrimPrefix(text, f[0]))
	} else if r.Action == TempFail {
		r.Reply.Enhanced = "4.7.1"
	} else {
		r.Reply.Enhanced = "5.7.1"
	}
	r.Reply.Code, r.Reply.Text = code, text
	return r, nil
}

// isEnhanced reports whether s is an RFC 3463 status whose class matches
// the reply code's.
func isEnhanced(s string, class int) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || p[0] != fmt.Sprint(class) {
		return false
	}
	for _, x := range p[1:] {
		if x == "" || len(x) > 3 || strings.Trim(x, "0123456789") != "" {
			return false
		}
	}
	return true
}

// ctxDialer dials under a context and closes the connection when the
// context ends, which ends any read or write the library is blocked in
// (its own deadlines are per packet, so a milter sending progress packets
// forever would otherwise hold the session).
//
// The library gives every read and write the same timeout; negotiation
// gets connect_timeout instead, from the start of the dial: the
// connection's deadlines are capped until negotiated is called.
type ctxDialer struct {
	ctx         context.Context
	d           net.Dialer
	negotiation time.Duration
	conn        *cappedConn
	stop        func() bool
}

func (d *ctxDialer) Dial(network, addr string) (net.Conn, error) {
	start := time.Now()
	conn, err := d.d.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &cappedConn{Conn: conn}
	if d.negotiation > 0 {
		c.cap = start.Add(d.negotiation)
		conn.SetDeadline(c.cap)
	}
	d.conn = c
	d.stop = context.AfterFunc(d.ctx, func() { conn.Close() })
	return c, nil
}

// negotiated lifts the negotiation's deadline: from now on each reply
// has the milter's timeout.
func (d *ctxDialer) negotiated() {
	if d.conn != nil {
		d.conn.mu.Lock()
		d.conn.cap = time.Time{}
		d.conn.mu.Unlock()
		d.conn.SetDeadline(time.Time{})
	}
}

// cappedConn keeps every deadline at or before cap while cap is set.
type cappedConn struct {
	net.Conn
	mu  sync.Mutex
	cap time.Time
}

func (c *cappedConn) capped(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cap.IsZero() && (t.IsZero() || t.After(c.cap)) {
		return c.cap
	}
	return t
}

func (c *cappedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.capped(t)) }
func (c *cappedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.capped(t))
}
func (c *cappedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.capped(t))
}

// close closes the connection of the last Dial. Closing after the
// library's own Close (QUIT) is harmless.
func (d *ctxDialer) close() {
	if d.conn != nil {
		d.stop()
		d.conn.Close()
		d.conn = nil
	}
}
