// Package filesource keeps a value parsed from a file current. It checks
// the file's inode, size and modification time at most once per interval,
// on access, and parses it again when any of them changed. A file that
// disappears or stops parsing leaves the last good value in use and logs
// an error naming the file, so a bad deployment of a key or bundle does
// not take a running service down.
package filesource

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go-micro.dev/v4/logger"
)

// DefaultInterval is how often a file is checked for changes.
const DefaultInterval = time.Second

// Source is a value parsed from a file.
type Source[T any] struct {
	path     string
	what     string
	parse    func([]byte) (T, error)
	interval time.Duration
	now      func() time.Time
	log      logger.Logger

	current   atomic.Pointer[T]
	nextCheck atomic.Int64 // Unix nanoseconds

	mu      sync.Mutex
	file    os.FileInfo // identifies the file for os.SameFile
	size    int64
	modTime time.Time
	failed  string // the last error logged, to log each failure once
}

// Open reads and parses the file at path. It fails when the first read or
// parse fails, naming the file and what it was expected to hold (what, for
// example "trust bundle").
func Open[T any](path, what string, parse func([]byte) (T, error), log logger.Logger) (*Source[T], error) {
	if log == nil {
		log = logger.DefaultLogger
	}
	s := &Source[T]{path: path, what: what, parse: parse, interval: DefaultInterval, now: time.Now, log: log}

	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s file: %w", what, err)
	}
	v, err := s.read()
	if err != nil {
		return nil, err
	}
	s.current.Store(&v)
	s.file, s.size, s.modTime = info, info.Size(), info.ModTime()
	s.nextCheck.Store(s.now().Add(s.interval).UnixNano())
	return s, nil
}

// SetInterval changes how often the file is checked; tests shorten it.
func (s *Source[T]) SetInterval(d time.Duration) {
	s.interval = d
	s.nextCheck.Store(0)
}

// Get returns the current value, reloading the file first when the check
// interval has passed and the file changed.
func (s *Source[T]) Get() T {
	if now := s.now().UnixNano(); now >= s.nextCheck.Load() {
		s.reload()
	}
	return *s.current.Load()
}

// Current returns the value in use without checking the file.
func (s *Source[T]) Current() T { return *s.current.Load() }

// Path returns the file's path.
func (s *Source[T]) Path() string { return s.path }

func (s *Source[T]) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := s.now()
	if now.UnixNano() < s.nextCheck.Load() {
		return
	}
	s.nextCheck.Store(now.Add(s.interval).UnixNano())

	info, err := os.Stat(s.path)
	if err != nil {
		s.fail(fmt.Errorf("reading %s file: %w", s.what, err))
		return
	}
	// Linux sets modification times from a clock that advances in steps
	// of several milliseconds, so a file renamed over this one within a
	// step with the same size would otherwise go unnoticed. A renamed
	// file is a new inode, which os.SameFile detects.
	// NOTE: a rewrite in place (same inode) of the same size within one
	// such step is still missed until the file changes again.
	if os.SameFile(info, s.file) && info.Size() == s.size && info.ModTime().Equal(s.modTime) {
		return
	}

	v, err := s.read()
	if err != nil {
		s.fail(err)
		return
	}
	s.current.Store(&v)
	s.file, s.size, s.modTime, s.failed = info, info.Size(), info.ModTime(), ""
	s.log.Fields(map[string]any{"file": s.path}).Logf(logger.InfoLevel, "signet: reloaded %s", s.what)
}

func (s *Source[T]) read() (T, error) {
	var zero T
	data, err := os.ReadFile(s.path)
	if err != nil {
		return zero, fmt.Errorf("reading %s file: %w", s.what, err)
	}
	v, err := s.parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s file %s: %w", s.what, s.path, err)
	}
	return v, nil
}

func (s *Source[T]) fail(err error) {
	if msg := err.Error(); msg != s.failed {
		s.failed = msg
		s.log.Fields(map[string]any{"file": s.path, "error": msg}).Logf(logger.ErrorLevel, "signet: keeping the last good %s, because the file could not be loaded", s.what)
	}
}
