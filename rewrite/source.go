package rewrite

import (
	"fmt"
	"strings"
)

// Source is where a message came from, as the relay classified the client.
// It is the one source type of the gateway: the rewrite rules, the policy,
// the spool's envelope, the milters and the sanitize rules key on it. The
// zero value is invalid on purpose: a caller that forgets to classify a
// message gets an error instead of the rules for some default source.
type Source uint8

// The sources a rule can be limited to.
const (
	SourceInner         Source = iota + 1 // the trusted inner networks (the inner mail server)
	SourceAuthenticated                   // a client that passed SMTP AUTH
	SourceInternet                        // anyone else
)

var sourceNames = [...]string{SourceInner: "inner", SourceAuthenticated: "authenticated", SourceInternet: "internet"}

func (s Source) String() string {
	if s >= SourceInner && s <= SourceInternet {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

func (s Source) valid() bool { return s >= SourceInner && s <= SourceInternet }

// MarshalText writes the source's name ("" for the zero value), so JSON
// and the spool's records carry "inner", "authenticated" or "internet".
func (s Source) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, nil
	}
	return []byte(sourceNames[s]), nil
}

// UnmarshalText reads a name MarshalText wrote; "" is the zero value.
func (s *Source) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	v, err := ParseSource(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSource reads "inner", "authenticated" or "internet".
func ParseSource(v string) (Source, error) {
	for s := SourceInner; s <= SourceInternet; s++ {
		if v == sourceNames[s] {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%q is not a source (inner, authenticated, internet)", v)
}

// Class is a kind of address position a rule may touch.
type Class uint8

// The address classes, as in Postfix's canonical_classes.
const (
	EnvelopeSender    Class = iota + 1 // MAIL FROM
	EnvelopeRecipient                  // RCPT TO
	HeaderSender                       // From, Sender, Reply-To, Resent-From, Resent-Sender, Disposition-Notification-To, Return-Receipt-To
	HeaderRecipient                    // To, Cc, Bcc, Resent-To, Resent-Cc, Resent-Bcc
)

var classNames = [...]string{
	EnvelopeSender:    "envelope_sender",
	EnvelopeRecipient: "envelope_recipient",
	HeaderSender:      "header_sender",
	HeaderRecipient:   "header_recipient",
}

func (c Class) String() string {
	if c >= EnvelopeSender && c <= HeaderRecipient {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// MarshalText makes classes readable in JSON traces.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// ParseClass reads a class name such as "header_sender".
func ParseClass(v string) (Class, error) {
	for c := EnvelopeSender; c <= HeaderRecipient; c++ {
		if v == classNames[c] {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%q is not an address class (%s)", v, strings.Join(classNames[1:], ", "))
}

// classSet and sourceSet are bit sets indexed by Class and Source.
type (
	classSet  uint8
	sourceSet uint8
)

const allClasses = classSet(1<<EnvelopeSender | 1<<EnvelopeRecipient | 1<<HeaderSender | 1<<HeaderRecipient)

func (s classSet) has(c Class) bool     { return s&(1<<c) != 0 }
func (s sourceSet) has(src Source) bool { return s&(1<<src) != 0 }
