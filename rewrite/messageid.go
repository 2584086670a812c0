package rewrite

import "strings"

// maxMessageID bounds the Message-ID kept for logs and the message trace:
// RFC 5322 lines are at most 998 octets.
const maxMessageID = 998

// MessageID returns the value of the first Message-ID field of a header
// block, unfolded and trimmed ("<id@host>" as the sender wrote it), or ""
// when there is none. The value is not checked against RFC 5322's msg-id:
// it is what a trace search must find, whatever the sender wrote.
func MessageID(header []byte) string {
	hs := string(header)
	for _, f := range splitFields(hs, nil) {
		if !strings.EqualFold(f.name(hs), "Message-ID") {
			continue
		}
		v := strings.Join(strings.Fields(hs[f.valStart:f.valEnd]), " ")
		if len(v) > maxMessageID {
			v = v[:maxMessageID]
		}
		return v
	}
	return ""
}
