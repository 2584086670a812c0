package session

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/relay/queue"
	"github.com/sekisho/sekisho/rewrite"
)

func TestArchiveCopies(t *testing.T) {
	list := []ArchiveConfig{
		{Direction: "inbound", Address: "in@archive.example"},
		{Direction: "outbound", Address: "out@archive.example"},
		{Direction: "all", Address: "all@archive.example"},
		{Direction: "all", Address: "IN@archive.example"}, // the same mailbox as the first
	}
	copyOf := func(a string) queue.Recipient { return queue.Recipient{Addr: a, OrigAddr: a, Notify: "NEVER"} }
	for _, tc := range []struct {
		name string
		src  rewrite.Source
		have []string
		want []queue.Recipient
	}{
		{"internet", rewrite.SourceInternet, []string{"bucho@test.jp"},
			[]queue.Recipient{copyOf("in@archive.example"), copyOf("all@archive.example")}},
		{"inner", rewrite.SourceInner, []string{"partner@example.org"},
			[]queue.Recipient{copyOf("out@archive.example"), copyOf("all@archive.example"), copyOf("IN@archive.example")}},
		{"authenticated", rewrite.SourceAuthenticated, nil,
			[]queue.Recipient{copyOf("out@archive.example"), copyOf("all@archive.example"), copyOf("IN@archive.example")}},
		{"already a recipient", rewrite.SourceInternet, []string{"All@Archive.example"},
			[]queue.Recipient{copyOf("in@archive.example")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var have []queue.Recipient
			for _, a := range tc.have {
				have = append(have, queue.Recipient{Addr: a})
			}
			if got := archiveCopies(list, tc.src, have); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestValidateArchive(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []ArchiveConfig
		want []string
	}{
		{"good", []ArchiveConfig{{"inbound", "a@x.example"}, {"outbound", "a@x.example"}, {"all", "b@x.example"}}, nil},
		{"direction", []ArchiveConfig{{"both", "a@x.example"}}, []string{`archive[0].direction: "both" is not a direction (inbound, outbound, all)`}},
		{"address", []ArchiveConfig{{"all", "archive"}}, []string{`archive[0].address: "archive" is not of the form local@domain`}},
		{"repeat", []ArchiveConfig{{"all", "a@x.example"}, {"all", "A@x.example"}}, []string{"archive[1]: repeats archive[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range ValidateArchive(tc.list) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
