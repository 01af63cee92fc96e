package registry

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/logger"

	"github.com/signet-micro/signet/verify"
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

func TestRejectionLogServiceBudget(t *testing.T) {
	var lines []string
	rec := &recordingLogger{lines: &lines}
	now := time.Unix(1_800_000_000, 0)
	l := newRejectionLog(rec, time.Minute, func() time.Time { return now })

	for i := 0; i < 5*maxLinesPerService; i++ {
		l.rejected(&verify.Rejection{Service: "greeter", NodeID: fmt.Sprintf("rogue-%d", i), Err: verify.ErrUnsigned}, "unsigned", Enforce)
	}
	if len(lines) != maxLinesPerService {
		t.Fatalf("logged %d lines for %d distinct rogue nodes, want the budget of %d", len(lines), 5*maxLinesPerService, maxLinesPerService)
	}

	// The next interval starts with a summary of what was suppressed.
	now = now.Add(time.Minute)
	l.rejected(&verify.Rejection{Service: "greeter", NodeID: "rogue-new", Err: verify.ErrUnsigned}, "unsigned", Enforce)
	if len(lines) != maxLinesPerService+2 {
		t.Fatalf("after the interval: %d lines, want %d (summary and one rejection)", len(lines), maxLinesPerService+2)
	}
	if !strings.Contains(lines[maxLinesPerService], "suppressed=400") {
		t.Errorf("summary line = %q, want suppressed=400", lines[maxLinesPerService])
	}
}

// recordingLogger is a go-micro logger.Logger that keeps each line with
// its fields, because the default logger ignores its output option.
type recordingLogger struct {
	fields map[string]any
	lines  *[]string
}

func (r *recordingLogger) Init(...logger.Option) error { return nil }
func (r *recordingLogger) Options() logger.Options     { return logger.Options{} }
func (r *recordingLogger) String() string              { return "recording" }
func (r *recordingLogger) Fields(f map[string]any) logger.Logger {
	return &recordingLogger{fields: f, lines: r.lines}
}
func (r *recordingLogger) Log(_ logger.Level, v ...any) { r.add(fmt.Sprint(v...)) }
func (r *recordingLogger) Logf(_ logger.Level, format string, v ...any) {
	r.add(fmt.Sprintf(format, v...))
}

func (r *recordingLogger) add(msg string) {
	keys := make([]string, 0, len(r.fields))
	for k := range r.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		msg += fmt.Sprintf(" %s=%v", k, r.fields[k])
	}
	*r.lines = append(*r.lines, msg)
}
