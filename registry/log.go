package registry

import (
	"strconv"
	"sync"
	"time"
	"unicode"

	"go-micro.dev/v4/logger"

	"github.com/signet-micro/signet/verify"
)

// maxLogKeys bounds the number of distinct rejections tracked for rate
// limiting; past it, the table starts afresh.
const maxLogKeys = 10000

// rejectionLog writes one line per rejected node and reason, then counts
// repeats of the same line and writes them at most once per interval with
// the count. Each service gets at most maxLinesPerService lines per
// interval, so rogue records of one service add a bounded number of lines.
// NOTE: rogue records under many distinct service names still add up to
// that many lines per name.
type rejectionLog struct {
	log   logger.Logger
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*logEntry
	budgets map[string]*logBudget // by service
}

// maxLinesPerService is how many rejection lines one service may produce
// per interval. Rate limiting by node alone does not bound the log, since
// an attacker can write any number of distinct rogue nodes.
const maxLinesPerService = 100

type logBudget struct {
	until      time.Time
	lines      int
	suppressed int
}

type logEntry struct {
	next    time.Time
	repeats int
}

func newRejectionLog(l logger.Logger, every time.Duration, now func() time.Time) *rejectionLog {
	return &rejectionLog{log: l, every: every, now: now, entries: map[string]*logEntry{}, budgets: map[string]*logBudget{}}
}

func (l *rejectionLog) rejected(rej *verify.Rejection, reason string, mode Mode) {
	key := truncateKey(rej.Service) + "\x00" + truncateKey(rej.Version) + "\x00" + truncateKey(rej.NodeID) + "\x00" + truncateKey(rej.Address) + "\x00" + reason
	l.limited(key, func(repeats int) {
		if !l.spend(rej.Service) {
			return
		}
		msg := "signet: node rejected"
		if mode == Permissive {
			msg = "signet: node failed verification; passed on in permissive mode"
		}
		l.log.Fields(map[string]any{
			"service": logValue(rej.Service),
			"version": logValue(rej.Version),
			"node":    logValue(rej.NodeID),
			"address": logValue(rej.Address),
			"reason":  reason,
			"kid":     logValue(rej.KeyID),
			"jti":     logValue(rej.TokenID),
			"subject": logValue(rej.Subject),
			"error":   logValue(rej.Err.Error()),
			"repeats": repeats,
		}).Log(logger.WarnLevel, msg)
	})
}

// spend reports whether service may log one more rejection line in this
// interval. When a new interval starts, it first logs how many lines the
// last one suppressed.
func (l *rejectionLog) spend(service string) bool {
	now := l.now()
	key := truncateKey(service)

	l.mu.Lock()
	b, ok := l.budgets[key]
	if !ok {
		if len(l.budgets) >= maxLogKeys {
			l.budgets = map[string]*logBudget{}
		}
		b = &logBudget{}
		l.budgets[key] = b
	}
	suppressed := 0
	if !now.Before(b.until) {
		suppressed = b.suppressed
		*b = logBudget{until: now.Add(l.every)}
	}
	b.lines++
	allowed := b.lines <= maxLinesPerService
	if !allowed {
		b.suppressed++
	}
	l.mu.Unlock()

	if suppressed > 0 {
		l.log.Fields(map[string]any{"service": logValue(service), "suppressed": suppressed}).
			Log(logger.WarnLevel, "signet: more rejected nodes than the per-service log limit; the rest were counted, not logged")
	}
	return allowed
}

// maxKeyPart bounds each attacker-chosen part of a rate-limit key, so that
// the table stays small however long the ids in rogue records are.
const maxKeyPart = 128

func truncateKey(s string) string {
	if len(s) > maxKeyPart {
		return s[:maxKeyPart]
	}
	return s
}

// maxLogValue bounds the length of one logged value.
const maxLogValue = 256

// logValue makes an attacker-controlled value safe to log: values with
// white space, quotes, '=' or non-printable characters are quoted with Go
// escapes, so a rogue record cannot forge a log line or a field, and long
// values are cut.
func logValue(s string) string {
	if len(s) > maxLogValue {
		s = s[:maxLogValue] + "..."
	}
	for _, r := range s {
		if r == '"' || r == '=' || r == '\\' || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// limited calls write for the first occurrence of key, and after that at
// most once per interval, with the number of occurrences not yet written.
func (l *rejectionLog) limited(key string, write func(repeats int)) {
	now := l.now()

	l.mu.Lock()
	e, ok := l.entries[key]
	if !ok {
		if len(l.entries) >= maxLogKeys {
			l.entries = map[string]*logEntry{}
		}
		e = &logEntry{}
		l.entries[key] = e
	}
	e.repeats++
	if now.Before(e.next) {
		l.mu.Unlock()
		return
	}
	repeats := e.repeats
	e.repeats = 0
	e.next = now.Add(l.every)
	l.mu.Unlock()

	write(repeats)
}
