package conformance

import (
	"strings"
	"testing"
)

// The interpreter itself: a scenario is only as good as its checks.

func TestDialogueFormat_ReplySpecs(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		reply reply
		ok    bool
	}{
		{"250", reply{code: "250"}, true},
		{"250", reply{code: "251"}, false},
		{"2xx", reply{code: "251"}, true},
		{"5xx", reply{code: "452"}, false},
		{"550 5.1.1", reply{code: "550", enhanced: "5.1.1"}, true},
		{"550 5.1.1", reply{code: "550", enhanced: "5.1.10"}, false},
		{"550 5.1", reply{code: "550", enhanced: "5.1.10"}, true},
		{"550 5.7.1", reply{code: "550", enhanced: ""}, false},
		{"250 ~ AUTH PLAIN", reply{code: "250", lines: []string{"250-x", "250-AUTH PLAIN LOGIN", "250 SIZE"}}, true},
		{"250 ~ auth plain !~ CRAM", reply{code: "250", lines: []string{"250 AUTH PLAIN CRAM-MD5"}}, false},
		{"250 !~ AUTH", reply{code: "250", lines: []string{"250-x", "250 SIZE 1"}}, true},
	} {
		spec, err := parseReplySpec(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if err := spec.check(tc.reply); (err == nil) != tc.ok {
			t.Errorf("%q against %+v: %v, want ok=%v", tc.spec, tc.reply, err, tc.ok)
		}
	}
}

func TestDialogueFormat_Steps(t *testing.T) {
	steps, err := parseDialogue(`
# comment
connect mx from inner
S: 220
C: MAIL FROM:<a@b>
D: -- 
R: "a\r.\n"
S: 550 5.6.0 || 250 2.0.0
S: closed
starttls
auth cram-md5 u@test.jp secret
sleep 10ms
sink inner has 2 messages from <> for a@b
sink lgwan has nothing
no sink has anything
`)
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, s := range steps {
		verbs = append(verbs, s.verb)
	}
	want := "connect expect send send send expect closed starttls auth sleep sink sink nosink"
	if got := strings.Join(verbs, " "); got != want {
		t.Fatalf("verbs %q, want %q", got, want)
	}
	if steps[0].args[1] != "inner" || steps[0].line != 3 {
		t.Errorf("connect: %+v", steps[0])
	}
	if steps[3].text != "-- \r\n" {
		t.Errorf("D: lost its trailing space: %q", steps[3].text)
	}
	if steps[4].text != "a\r.\n" {
		t.Errorf("R: %q", steps[4].text)
	}
	if len(steps[5].exp) != 2 {
		t.Errorf("alternatives: %+v", steps[5].exp)
	}
	if s := steps[10]; s.n != 2 || s.args[1] != "from:" || s.args[2] != "a@b" {
		t.Errorf("sink step: %+v", s)
	}

	for _, bad := range []string{
		"S: 25",
		"S: 250 5.x.1",
		"S: 250 ~",
		"X: hello",
		"R: unquoted",
		"connect mx from mars",
		"auth digest-md5 u p",
		"sink inner has some messages",
		"sink inner has 1 message to a@b",
		"no sink has much",
		"dance",
	} {
		if _, err := parseDialogue(bad); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
}

func TestDialogueFormat_BareLineEnding(t *testing.T) {
	for in, want := range map[string]int{"a\r\nb\r\n": -1, "a\nb": 1, "a\r\n\rb": 3, "\n": 0, "a\r": 1} {
		if got := bareLineEnding([]byte(in)); got != want {
			t.Errorf("bareLineEnding(%q) = %d, want %d", in, got, want)
		}
	}
}
