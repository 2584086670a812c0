package rewrite

import "strings"

// EnvelopeFromHeader guesses the envelope of a saved message (rewrite
// test, the console's rewrite dry run): the sender
// from Return-Path (else the first From), the recipients from To, Cc, Bcc.
func EnvelopeFromHeader(hdr []byte) (from string, rcpts []string) {
	seen := map[string]bool{}
	var firstFrom, returnPath string
	returnPathSeen := false
	for _, a := range ScanHeader(hdr) {
		switch strings.ToLower(a.Field) {
		case "from":
			if firstFrom == "" {
				firstFrom = a.Address
			}
		case "to", "cc", "bcc":
			if a.Address != "" && !seen[strings.ToLower(a.Address)] {
				seen[strings.ToLower(a.Address)] = true
				rcpts = append(rcpts, a.Address)
			}
		}
	}
	// Return-Path is not an address field for rewriting, so read it here.
	for _, line := range strings.Split(string(hdr), "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Return-Path") {
			returnPathSeen = true
			returnPath = strings.Trim(strings.TrimSpace(v), "<>")
			break
		}
	}
	if returnPathSeen {
		return returnPath, rcpts
	}
	return firstFrom, rcpts
}
