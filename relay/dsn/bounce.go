package dsn

import (
	"bytes"
	"mime"
	"strings"
)

// ShouldBounce reports whether a failed message may be answered with a
// notification. Never for the null sender (a bounce is never bounced, RFC
// 5321 §4.5.5) and never for a message that is itself a report
// (multipart/report: DSNs, MDNs, abuse reports), whatever its envelope says,
// so two gateways cannot bounce each other's notifications forever.
func ShouldBounce(envelopeFrom string, header []byte) bool {
	switch strings.TrimSpace(envelopeFrom) {
	case "", "<>":
		return false
	}
	ct, ok := headerField(header, "Content-Type")
	if !ok {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// A broken parameter list must not hide the media type.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	switch mt {
	case "multipart/report", "message/delivery-status", "message/global-delivery-status":
		return false
	}
	return true
}

// headerField returns the unfolded value of the first field called name in
// a raw header (CRLF or LF line ends), reading up to the first empty line.
func headerField(header []byte, name string) (string, bool) {
	var value []byte
	found := false
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			header = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if found {
				value = append(value, line...)
			}
			continue
		}
		if found {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon > 0 && strings.EqualFold(strings.TrimRight(string(line[:colon]), " \t"), name) {
			found = true
			value = append(value, line[colon+1:]...)
		}
	}
	return strings.TrimSpace(string(value)), found
}

// BodyType is the BODY= a notification from Build is queued with: "7BIT",
// unless its To field carries a UTF-8 sender (then "8BITMIME"). Queuing a
// 7-bit notification as 8BITMIME would make a next hop without 8BITMIME
// refuse it for good, and a bounce of a bounce is never sent.
func BodyType(msg []byte) string {
	for _, c := range msg {
		if c >= 0x80 {
			return "8BITMIME"
		}
	}
	return "7BIT"
}
