package backend

import (
	"fmt"
	"strings"
	"sync"

	"go-micro.dev/v4/logger"
)

// recordingLogger is a go-micro logger that keeps every line with its
// fields, because the default logger of go-micro v4.11.0 prints to
// standard output and ignores logger.WithOutput.
type recordingLogger struct {
	mu     *sync.Mutex
	lines  *[]string
	fields map[string]any
}

func newRecordingLogger() *recordingLogger {
	return &recordingLogger{mu: new(sync.Mutex), lines: new([]string)}
}

func (l *recordingLogger) Init(...logger.Option) error { return nil }
func (l *recordingLogger) Options() logger.Options     { return logger.Options{Level: logger.TraceLevel} }
func (l *recordingLogger) String() string              { return "recording" }

func (l *recordingLogger) Fields(fields map[string]any) logger.Logger {
	merged := make(map[string]any, len(l.fields)+len(fields))
	for k, v := range l.fields {
		merged[k] = v
	}
	for k, v := range fields {
		merged[k] = v
	}
	return &recordingLogger{mu: l.mu, lines: l.lines, fields: merged}
}

func (l *recordingLogger) Log(level logger.Level, v ...any) {
	l.record(level, fmt.Sprint(v...))
}

func (l *recordingLogger) Logf(level logger.Level, format string, v ...any) {
	l.record(level, fmt.Sprintf(format, v...))
}

func (l *recordingLogger) record(level logger.Level, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.lines = append(*l.lines, fmt.Sprintf("%s %s %v", level, message, l.fields))
}

// Text returns every recorded line, one per line.
func (l *recordingLogger) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(*l.lines, "\n")
}
