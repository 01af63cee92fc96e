package registry

import (
	"strings"
	"testing"
)

func TestLogValueQuotesInjection(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:80":                 "127.0.0.1:80",
		"evil\nlevel=error msg=forged": `"evil\nlevel=error msg=forged"`,
		"a=b":                          `"a=b"`,
		`say "hi"`:                     `"say \"hi\""`,
		"\u202egnp.exe":                `"\u202egnp.exe"`,
		strings.Repeat("x", 300):       strings.Repeat("x", maxLogValue) + "...",
	}
	for in, want := range cases {
		if got := logValue(in); got != want {
			t.Errorf("logValue(%q) = %q, want %q", in, got, want)
		}
	}
}
