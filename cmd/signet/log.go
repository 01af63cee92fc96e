package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"go-micro.dev/v4/logger"
)

// writerLogger is a go-micro logger.Logger that writes one line per entry
// to its output, in the format of go-micro's default logger: time, sorted
// key=value fields, message. It exists because the default logger of
// go-micro v4.11.0 ignores logger.WithOutput and prints to standard
// output, where it would mix with the tables and JSON of audit and purge.
// Field values are quoted when they hold control characters (see
// [sanitize]), because they come from registry records.
type writerLogger struct {
	mu   *sync.Mutex // shared by the loggers that Fields derives
	opts logger.Options
	now  func() time.Time
}

var _ logger.Logger = (*writerLogger)(nil)

func newWriterLogger(out io.Writer, level logger.Level) *writerLogger {
	return &writerLogger{
		mu:   &sync.Mutex{},
		opts: logger.Options{Out: out, Level: level, Fields: map[string]any{}},
		now:  time.Now,
	}
}

func (l *writerLogger) Init(opts ...logger.Option) error {
	for _, o := range opts {
		o(&l.opts)
	}
	return nil
}

func (l *writerLogger) Options() logger.Options { return l.opts }

func (l *writerLogger) String() string { return "signet-cli" }

// Fields returns a logger that adds fields to every entry.
func (l *writerLogger) Fields(fields map[string]any) logger.Logger {
	merged := make(map[string]any, len(l.opts.Fields)+len(fields))
	for k, v := range l.opts.Fields {
		merged[k] = v
	}
	for k, v := range fields {
		merged[k] = v
	}
	derived := *l
	derived.opts.Fields = merged
	return &derived
}

func (l *writerLogger) Log(level logger.Level, v ...any) {
	l.write(level, fmt.Sprint(v...))
}

func (l *writerLogger) Logf(level logger.Level, format string, v ...any) {
	l.write(level, fmt.Sprintf(format, v...))
}

func (l *writerLogger) write(level logger.Level, msg string) {
	if !l.opts.Level.Enabled(level) || l.opts.Out == nil {
		return
	}

	keys := make([]string, 0, len(l.opts.Fields))
	for k := range l.opts.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var b strings.Builder
	b.WriteString(l.now().Format("2006-01-02 15:04:05"))
	b.WriteString(" level=")
	b.WriteString(level.String())
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", sanitize(k), sanitize(fmt.Sprint(l.opts.Fields[k])))
	}
	b.WriteByte(' ')
	b.WriteString(sanitize(msg))
	b.WriteByte('\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.opts.Out, b.String())
}
