// Package conformance runs the E-Post seeds' scenarios end to end against the real sekisho binary over loopback.
//
// The tests build cmd/sekisho once, start `sekisho serve` with a generated
// configuration per scenario, and stand up in-process peers on loopback: SMTP
// sinks for the inner mail server, the LGWAN relay and internet MX hosts,
// and a fake DNS server (routing/dnstest). Scenarios are dialogues (see
// dialogue_test.go for the format) plus assertions on what each sink
// received. A scenario that needs no Go around it is a file of its own in
// testdata/dialogues (dialogue_files_test.go: its configuration, "---",
// the dialogue); one that does something in Go between dialogues (a
// reload, kill -9, a sink taken down) loads them by name from
// testdata/dialogues/steps (dialogue_steps_test.go), so no dialogue is a
// Go string literal. The SMTP sinks run on relay/smtpd. Run them with
//
//	go test ./conformance/
//
// (with -race the binary is built with the race detector too). Flags:
// -sekisho.bin=PATH tests a binary built elsewhere; -conformance.transcripts
// logs every dialogue, passing ones too. The MX scenarios bind port 25 on
// 127.0.1.x, which needs root or CAP_NET_BIND_SERVICE.
package conformance
