package filesource_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-micro/signet/internal/filesource"
	"github.com/signet-micro/signet/internal/testid"
)

// parseNumber accepts a file holding one decimal number.
func parseNumber(data []byte) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, errors.New("not a number")
	}
	return n, nil
}

// write replaces the file and moves its modification time forward, so a
// change shows even within the file system's time resolution.
func write(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	logs := &testid.LogBuffer{}

	_, err := filesource.Open(filepath.Join(dir, "missing"), "trust bundle", parseNumber, logs.Logger())
	if err == nil || !strings.Contains(err.Error(), "trust bundle") {
		t.Fatalf("Open(missing) err = %v; want it to name what the file holds", err)
	}

	path := filepath.Join(dir, "bad")
	write(t, path, "abc", time.Now())
	_, err = filesource.Open(path, "trust bundle", parseNumber, logs.Logger())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a number") {
		t.Fatalf("Open(bad) err = %v; want the path and the parse error", err)
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	mod := time.Now().Add(-time.Hour)
	write(t, path, "1", mod)

	logs := &testid.LogBuffer{}
	s, err := filesource.Open(path, "number", parseNumber, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Get(); got != 1 {
		t.Fatalf("Get = %d, want 1", got)
	}

	// Within the interval, a change is not seen yet.
	s.SetInterval(time.Hour)
	_ = s.Get()
	mod = mod.Add(time.Second)
	write(t, path, "2", mod)
	if got := s.Get(); got != 1 {
		t.Fatalf("Get within the interval = %d, want the old 1", got)
	}
	s.SetInterval(0)
	if got := s.Get(); got != 2 {
		t.Fatalf("Get after the interval = %d, want 2", got)
	}

	// Garbage keeps the last good value and logs once, however often the
	// file is checked.
	mod = mod.Add(time.Second)
	write(t, path, "garbage", mod)
	for range 5 {
		if got := s.Get(); got != 2 {
			t.Fatalf("Get after garbage = %d, want the last good 2", got)
		}
	}
	if n := strings.Count(logs.String(), "keeping the last good number"); n != 1 {
		t.Errorf("the broken file was logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("log does not name %s:\n%s", path, logs)
	}

	// A removed file keeps the last good value too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := s.Get(); got != 2 {
		t.Fatalf("Get after removal = %d, want 2", got)
	}

	// A repaired file is loaded again.
	mod = mod.Add(time.Second)
	write(t, path, "3", mod)
	if got := s.Get(); got != 3 {
		t.Fatalf("Get after repair = %d, want 3", got)
	}
	if s.Path() != path {
		t.Errorf("Path = %q", s.Path())
	}
}

func TestReloadSameSizeSameTime(t *testing.T) {
	// Reloading keys on size and modification time: a same-size rewrite
	// with a new time is seen.
	path := filepath.Join(t.TempDir(), "n")
	mod := time.Now().Add(-time.Hour)
	write(t, path, "10", mod)
	s, err := filesource.Open(path, "number", parseNumber, (&testid.LogBuffer{}).Logger())
	if err != nil {
		t.Fatal(err)
	}
	s.SetInterval(0)
	write(t, path, "20", mod.Add(time.Second))
	if got := s.Get(); got != 20 {
		t.Fatalf("Get = %d, want 20", got)
	}
}

func TestConcurrentGet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	mod := time.Now().Add(-time.Hour)
	write(t, path, "1", mod)
	s, err := filesource.Open(path, "number", parseNumber, (&testid.LogBuffer{}).Logger())
	if err != nil {
		t.Fatal(err)
	}
	s.SetInterval(0)

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if got := s.Get(); got < 1 || got > 2 {
					t.Errorf("goroutine %d: Get = %d", i, got)
					return
				}
			}
		}()
	}
	write(t, path, "2", mod.Add(time.Second))
	wg.Wait()
}
