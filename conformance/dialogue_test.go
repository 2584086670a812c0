package conformance

// The dialogue format, one step a line, in the spirit of chasquid's .cmy
// files. Blank lines and lines starting with '#' are ignored.
//
//	connect mx from internet    open a connection to the listener named mx
//	                            ({{listen "mx"}} in the configuration) from a
//	                            client address: inner, internet, staff or an IP
//	C: MAIL FROM:<a@b>          send the text and CRLF (sends are buffered
//	                            until the next S:, so C: lines before their
//	                            S: lines are pipelined)
//	D: Subject: hi              the same, for message lines inside DATA
//	R: "body\n.\nMAIL"          send exactly these bytes (a Go string literal)
//	S: 250                      expect a reply with this code; 2xx, 4xx, 5xx
//	S: 550 5.1.1                accept any code of the class; an enhanced
//	                            status checks the reply's, by prefix
//	S: 250 ~ AUTH PLAIN         ... whose text contains "AUTH PLAIN"
//	S: 250 !~ AUTH              ... whose text does not contain "AUTH"
//	S: 550 5.6.0 || 250         either of two replies
//	S: closed                   the server closes the connection
//	starttls                    STARTTLS, expect 220, TLS handshake
//	auth plain USER PASS        an AUTH exchange (also login, cram-md5); the
//	                            next S: checks its final reply
//	sleep 2s                    wait
//
// Assertions on the sinks, usually after the dialogue; the first of a
// group waits until the gateway's queue is empty, so everything accepted
// has been delivered or bounced (a group after more dialogue waits again):
//
//	sink inner has 1 message for tanaka@test.jp
//	sink inner has 1 message from <> for bucho@test.jp
//	sink inner has 1 message containing "Action: failed" lacking "\x00"
//	                            (texts are Go string literals; a message
//	                            must hold every containing, no lacking)
//	sink lgwan has 2 messages
//	sink internet has nothing
//	no sink has anything

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var showTranscripts = flag.Bool("conformance.transcripts", false, "log the transcript of every dialogue, passing ones too")

// step is one parsed line of a dialogue.
type step struct {
	line  int
	verb  string // connect, send, expect, closed, starttls, auth, sleep, sink, nosink
	args  []string
	text  string      // send: the bytes; expect: the raw spec
	exp   []replySpec // alternatives
	n     int         // sink: the expected count
	has   []string    // sink: texts a matching message holds
	lacks []string    // sink: texts it does not hold
}

// replySpec is what an S: line expects.
type replySpec struct {
	code     string // "250" or "2xx"
	enhanced string // prefix of the enhanced status, or ""
	contains []string
	lacks    []string
}

var enhancedRE = regexp.MustCompile(`^[245]\.\d{1,3}(\.\d{1,3})?$`)

// parseDialogue reads a script; errors are name:LINE: reason.
func parseDialogue(name, script string) ([]step, error) {
	var steps []step
	for i, raw := range strings.Split(script, "\n") {
		n := i + 1
		// Leading indentation goes; trailing spaces stay, since a C: or
		// D: line sends them ("-- " before a signature).
		line := strings.TrimLeft(strings.TrimSuffix(raw, "\r"), " \t")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		st, err := parseStep(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %v", name, n, line, err)
		}
		st.line = n
		steps = append(steps, st)
	}
	return steps, nil
}

func parseStep(line string) (step, error) {
	if len(line) >= 2 && line[1] == ':' {
		arg := strings.TrimPrefix(line[2:], " ")
		switch line[0] {
		case 'C', 'D':
			return step{verb: "send", text: arg + "\r\n"}, nil
		case 'R':
			s, err := strconv.Unquote(arg)
			if err != nil {
				return step{}, fmt.Errorf("R: wants a Go string literal: %v", err)
			}
			return step{verb: "send", text: s}, nil
		case 'S':
			if arg == "closed" {
				return step{verb: "closed"}, nil
			}
			st := step{verb: "expect", text: arg}
			for _, alt := range strings.Split(arg, "||") {
				spec, err := parseReplySpec(strings.TrimSpace(alt))
				if err != nil {
					return step{}, err
				}
				st.exp = append(st.exp, spec)
			}
			return st, nil
		}
		return step{}, errors.New("unknown prefix (C:, D:, R:, S:)")
	}
	line = strings.TrimSpace(line)
	f := strings.Fields(line)
	switch f[0] {
	case "connect":
		// connect NAME [from SOURCE]
		if len(f) != 2 && (len(f) != 4 || f[2] != "from") {
			return step{}, errors.New("want: connect LISTENER [from inner|internet|staff|IP]")
		}
		st := step{verb: "connect", args: []string{f[1], "internet"}}
		if len(f) == 4 {
			st.args[1] = f[3]
		}
		if _, err := source(st.args[1]); err != nil {
			return step{}, err
		}
		return st, nil
	case "starttls":
		return step{verb: "starttls"}, nil
	case "auth":
		if len(f) != 4 {
			return step{}, errors.New("want: auth plain|login|cram-md5 USER PASS")
		}
		switch f[1] {
		case "plain", "login", "cram-md5":
		default:
			return step{}, fmt.Errorf("unknown mechanism %q", f[1])
		}
		return step{verb: "auth", args: f[1:]}, nil
	case "sleep":
		if len(f) != 2 {
			return step{}, errors.New("want: sleep DURATION")
		}
		if _, err := time.ParseDuration(f[1]); err != nil {
			return step{}, err
		}
		return step{verb: "sleep", args: f[1:]}, nil
	case "no":
		if line != "no sink has anything" {
			return step{}, errors.New(`want: no sink has anything`)
		}
		return step{verb: "nosink"}, nil
	case "sink":
		return parseSinkStep(line)
	}
	return step{}, errors.New("unknown step")
}

// parseSinkStep reads "sink NAME has nothing" and
// "sink NAME has N message(s) [from <ADDR>] [for ADDR] [containing "TEXT"]...
// [lacking "TEXT"]..."; TEXT is a Go string literal, containing and
// lacking may repeat.
func parseSinkStep(line string) (step, error) {
	bad := errors.New(`want: sink NAME has nothing | sink NAME has N message(s) [from <ADDR>] [for ADDR] [containing "TEXT"]... [lacking "TEXT"]...`)
	f, err := quotedFields(line)
	if err != nil {
		return step{}, err
	}
	if len(f) < 4 || f[2] != "has" {
		return step{}, bad
	}
	st := step{verb: "sink", args: []string{f[1], "", ""}} // name, from, for
	if len(f) == 4 && f[3] == "nothing" {
		return st, nil
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 || len(f) < 5 || (f[4] != "message" && f[4] != "messages") {
		return step{}, bad
	}
	st.n = n
	rest := f[5:]
	for len(rest) > 0 {
		if len(rest) < 2 {
			return step{}, bad
		}
		switch rest[0] {
		case "from":
			st.args[1] = "from:" + strings.TrimSuffix(strings.TrimPrefix(rest[1], "<"), ">")
		case "for":
			st.args[2] = rest[1]
		case "containing", "lacking":
			text, err := strconv.Unquote(rest[1])
			if err != nil || text == "" {
				return step{}, fmt.Errorf("%s wants a non-empty Go string literal, got %s", rest[0], rest[1])
			}
			if rest[0] == "containing" {
				st.has = append(st.has, text)
			} else {
				st.lacks = append(st.lacks, text)
			}
		default:
			return step{}, bad
		}
		rest = rest[2:]
	}
	return st, nil
}

// quotedFields splits a line at spaces, keeping a Go string literal
// ("a b") one field, quotes and all.
func quotedFields(line string) ([]string, error) {
	var f []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " \t") {
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, fmt.Errorf("unterminated or bad string literal: %s", line)
			}
			f = append(f, q)
			line = line[len(q):]
			if line != "" && line[0] != ' ' && line[0] != '\t' {
				return nil, fmt.Errorf("want a space after %s", q)
			}
			continue
		}
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		f = append(f, line[:end])
		line = line[end:]
	}
	return f, nil
}

func parseReplySpec(s string) (replySpec, error) {
	var spec replySpec
	head, conds := s, ""
	if i := strings.IndexAny(s, "~!"); i >= 0 {
		head, conds = s[:i], s[i:]
	}
	f := strings.Fields(head)
	if len(f) == 0 || len(f) > 2 {
		return spec, errors.New("want: S: CODE [ENHANCED] [~ TEXT] [!~ TEXT]")
	}
	code := f[0]
	if len(code) != 3 || !strings.ContainsRune("2345", rune(code[0])) {
		return spec, fmt.Errorf("bad reply code %q", code)
	}
	if code[1:] != "xx" {
		if _, err := strconv.Atoi(code); err != nil {
			return spec, fmt.Errorf("bad reply code %q", code)
		}
	}
	spec.code = code
	if len(f) == 2 {
		if !enhancedRE.MatchString(f[1]) {
			return spec, fmt.Errorf("bad enhanced status %q", f[1])
		}
		spec.enhanced = f[1]
	}
	for conds != "" {
		neg := strings.HasPrefix(conds, "!~")
		if !neg && !strings.HasPrefix(conds, "~") {
			return spec, fmt.Errorf("expected ~ or !~ at %q", conds)
		}
		conds = strings.TrimPrefix(strings.TrimPrefix(conds, "!"), "~")
		end := len(conds)
		for _, m := range []string{" ~", " !~"} {
			if i := strings.Index(conds, m); i >= 0 && i < end {
				end = i
			}
		}
		text := strings.TrimSpace(conds[:end])
		conds = strings.TrimSpace(conds[end:])
		if text == "" {
			return spec, errors.New("empty text after ~")
		}
		if neg {
			spec.lacks = append(spec.lacks, text)
		} else {
			spec.contains = append(spec.contains, text)
		}
	}
	return spec, nil
}

// reply is one SMTP reply, possibly of several lines.
type reply struct {
	code     string
	enhanced string
	lines    []string // as received, without CRLF
}

func (r reply) String() string { return strings.Join(r.lines, " | ") }

func (r reply) text() string { return strings.Join(r.lines, "\n") }

func (spec replySpec) check(r reply) error {
	switch {
	case strings.HasSuffix(spec.code, "xx"):
		if r.code[0] != spec.code[0] {
			return fmt.Errorf("want a %s reply", spec.code)
		}
	case r.code != spec.code:
		return fmt.Errorf("want %s", spec.code)
	}
	if spec.enhanced != "" && r.enhanced != spec.enhanced && !strings.HasPrefix(r.enhanced, spec.enhanced+".") {
		return fmt.Errorf("want enhanced status %s, got %q", spec.enhanced, r.enhanced)
	}
	for _, c := range spec.contains {
		if !strings.Contains(strings.ToLower(r.text()), strings.ToLower(c)) {
			return fmt.Errorf("want the text to contain %q", c)
		}
	}
	for _, c := range spec.lacks {
		if strings.Contains(strings.ToLower(r.text()), strings.ToLower(c)) {
			return fmt.Errorf("want the text not to contain %q", c)
		}
	}
	return nil
}

// session is one run of dialogue steps against the world's gateway. Its
// connection outlives a file, so a scenario can go on with one session
// after Go-side steps (a reload) and check that the session survived.
type session struct {
	w          *world
	c          *smtpConn
	transcript strings.Builder
	drained    bool
}

func (w *world) newSession() *session { return &session{w: w} }

// close ends the session's connection, if any.
func (s *session) close() {
	if s.c != nil {
		s.c.conn.Close()
		s.c = nil
	}
}

// runDialogue runs a script in a new session; errors start with name:LINE.
func (w *world) runDialogue(t *testing.T, name, script string) error {
	t.Helper()
	s := w.newSession()
	defer s.close()
	return s.run(t, name, script)
}

// run parses the script and runs its steps on the session, stopping at the
// first that does not hold; the error is name:LINE, what failed and the
// transcript.
func (s *session) run(t *testing.T, name, script string) error {
	t.Helper()
	steps, err := parseDialogue(name, script)
	if err != nil {
		return err
	}
	transcript := &s.transcript
	fail := func(st step, format string, a ...any) error {
		if s.c != nil {
			transcript.WriteString(s.c.log.String())
			s.c.log.Reset()
		}
		return fmt.Errorf("%s:%d: %s\ntranscript:\n%s", name, st.line, fmt.Sprintf(format, a...), transcript.String())
	}
	for _, st := range steps {
		c := s.c
		if c == nil && st.verb != "connect" && st.verb != "sink" && st.verb != "nosink" && st.verb != "sleep" {
			return fail(st, "no connection: start with connect")
		}
		switch st.verb {
		case "connect":
			s.close()
			if c != nil {
				transcript.WriteString(c.log.String())
			}
			listener, src := st.args[0], st.args[1]
			addr, ok := s.w.ports[listener]
			if !ok {
				return fail(st, "no listener %q in the configuration", listener)
			}
			ip, _ := source(src)
			fmt.Fprintf(transcript, "-- connect %s (%s) from %s (%s)\n", listener, addr, src, ip)
			if s.c, err = dialFrom(ip, addr, s.w.tlsPorts[listener]); err != nil {
				return fail(st, "connect: %v", err)
			}
		case "send":
			c.send(st.text)
		case "expect":
			r, err := c.readReply()
			if err != nil {
				return fail(st, "S: %s: reading the reply: %v", st.text, err)
			}
			var errs []string
			for _, spec := range st.exp {
				if err := spec.check(r); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) == len(st.exp) {
				return fail(st, "S: %s: %s; got %q", st.text, strings.Join(errs, ", or "), r.String())
			}
		case "closed":
			if err := c.expectClosed(); err != nil {
				return fail(st, "S: closed: %v", err)
			}
		case "starttls":
			if err := c.starttls(); err != nil {
				return fail(st, "starttls: %v", err)
			}
		case "auth":
			if err := c.auth(st.args[0], st.args[1], st.args[2]); err != nil {
				return fail(st, "auth: %v", err)
			}
		case "sleep":
			if err := c.flushIfAny(); err != nil {
				return fail(st, "sending: %v", err)
			}
			d, _ := time.ParseDuration(st.args[0])
			time.Sleep(d)
		case "sink", "nosink":
			if !s.drained {
				if c != nil {
					c.flushIfAny()
				}
				s.w.gw.waitQueueEmpty(t)
				s.drained = true
			}
			if err := s.w.checkSinks(st); err != nil {
				return fail(st, "%v", err)
			}
		}
		if st.verb != "sink" && st.verb != "nosink" {
			// Anything sent or received after an assertion may queue
			// more mail: the next assertion waits for the queue again.
			s.drained = false
		}
	}
	if *showTranscripts {
		if s.c != nil {
			transcript.WriteString(s.c.log.String())
			s.c.log.Reset()
		}
		t.Logf("%s: transcript:\n%s", name, transcript)
	}
	return nil
}

func (c *smtpConn) flushIfAny() error {
	if c == nil {
		return nil
	}
	return c.flush()
}

// checkSinks evaluates a sink assertion on what has arrived.
func (w *world) checkSinks(st step) error {
	if st.verb == "nosink" {
		var bad []string
		for _, name := range w.order {
			if msgs := w.sinks[name].Messages(); len(msgs) > 0 {
				bad = append(bad, fmt.Sprintf("sink %s has %d message(s):\n%s", name, len(msgs), describeMessages(msgs)))
			}
		}
		if len(bad) > 0 {
			return errors.New("want no message anywhere; " + strings.Join(bad, ""))
		}
		return nil
	}
	name, from, rcpt := st.args[0], st.args[1], st.args[2]
	s, ok := w.sinks[name]
	if !ok {
		return fmt.Errorf("no sink %q in this scenario", name)
	}
	all := s.Messages()
	var got []sinkMessage
	for _, m := range all {
		if from != "" && !strings.EqualFold("from:"+m.From, from) {
			continue
		}
		if rcpt != "" && !containsFold(m.To, rcpt) {
			continue
		}
		if !holdsAll(m.Data, st.has) || holdsAny(m.Data, st.lacks) {
			continue
		}
		got = append(got, m)
	}
	if len(got) != st.n {
		return fmt.Errorf("sink %s: want %d matching message(s), got %d; everything it has:\n%s", name, st.n, len(got), describeMessages(all))
	}
	return nil
}

func holdsAll(data []byte, texts []string) bool {
	for _, t := range texts {
		if !strings.Contains(string(data), t) {
			return false
		}
	}
	return true
}

func holdsAny(data []byte, texts []string) bool {
	for _, t := range texts {
		if strings.Contains(string(data), t) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
