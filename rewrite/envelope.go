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
	// Whole fields only: a continuation line of another field that reads
	// "Return-Path:" is not one.
	hs := string(hdr)
	for _, f := range splitFields(hs, nil) {
		if strings.EqualFold(f.name(hs), "Return-Path") {
			returnPathSeen = true
			returnPath = strings.Trim(strings.Join(strings.Fields(hs[f.valStart:f.valEnd]), ""), "<>")
			break
		}
	}
	if returnPathSeen {
		return returnPath, rcpts
	}
	return firstFrom, rcpts
}
