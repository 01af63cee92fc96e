package conformance

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/registry"
)

// watchLog records what a signet watcher read from the backend's watcher
// and what it returned. It lets a test prove that a result was left out:
// once the raw result that carried a rogue node is in raw, the signet
// watcher has finished with it, and anything it returned for it is in out.
type watchLog struct {
	mu       sync.Mutex
	raw      []*registry.Result // raw results the signet watcher has finished with
	out      []*registry.Result // results the signet watcher returned
	errs     []error
	restarts int
}

func (l *watchLog) addRaw(r *registry.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw = append(l.raw, r)
}

func (l *watchLog) addOut(r *registry.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = append(l.out, r)
}

func (l *watchLog) addErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// snapshot returns copies of the raw and returned results so far.
func (l *watchLog) snapshot() (raw, out []*registry.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*registry.Result(nil), l.raw...), append([]*registry.Result(nil), l.out...)
}

// waitRaw waits until the signet watcher has finished with raw results
// that carry every node in ids, and returns what it returned by then.
func (l *watchLog) waitRaw(t *testing.T, what string, ids ...string) []*registry.Result {
	t.Helper()
	var raw, out []*registry.Result
	complete := pollUntil(func() bool {
		raw, out = l.snapshot()
		for _, id := range ids {
			if len(resultNodes(raw, id)) == 0 {
				return false
			}
		}
		return true
	})
	if !complete {
		l.mu.Lock()
		errs := append([]error(nil), l.errs...)
		l.mu.Unlock()
		t.Fatalf("timed out after %v waiting for %s in the raw watch results: want nodes %q, have %d raw results with nodes %q; watcher errors %v",
			pollTimeout, what, ids, len(raw), resultIDs(raw), errs)
	}
	return out
}

// resultIDs returns the node ids of the create and update results.
func resultIDs(results []*registry.Result) []string {
	var ids []string
	for _, r := range results {
		if r == nil || r.Service == nil || r.Action == "delete" {
			continue
		}
		for _, n := range r.Service.Nodes {
			if n != nil {
				ids = append(ids, n.Id)
			}
		}
	}
	return ids
}

// waitOut waits until the signet watcher has returned a create or update
// result with node id, and returns that node as the last such result has
// it.
func (l *watchLog) waitOut(t *testing.T, what, id string) *registry.Node {
	t.Helper()
	var nodes []*registry.Node
	poll(t, what+" in the signet watch results", func() bool {
		_, out := l.snapshot()
		nodes = resultNodes(out, id)
		return len(nodes) > 0
	})
	return nodes[len(nodes)-1]
}

// resultNodes returns the nodes with id in the create and update results.
func resultNodes(results []*registry.Result, id string) []*registry.Node {
	var nodes []*registry.Node
	for _, r := range results {
		if r == nil || r.Service == nil || r.Action == "delete" {
			continue
		}
		for _, n := range r.Service.Nodes {
			if n != nil && n.Id == id {
				nodes = append(nodes, n)
			}
		}
	}
	return nodes
}

// tapRegistry passes every call to the real registry, and its watchers
// record each raw result in log once the caller has finished with it. They
// read the real watcher in a goroutine of their own, so that a backend that
// drops results for slow readers loses none. go-micro's memory registry
// waits 10 ms for a reader.
type tapRegistry struct {
	registry.Registry
	log *watchLog
}

var (
	_ registry.Registry = (*tapRegistry)(nil)
	_ registry.Watcher  = (*tapWatcher)(nil)
)

func (r *tapRegistry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	w, err := r.Registry.Watch(opts...)
	if err != nil {
		return nil, err
	}
	tw := &tapWatcher{inner: w, log: r.log, results: make(chan rawResult, 1024), stopped: make(chan struct{})}
	go tw.read()
	return tw, nil
}

type rawResult struct {
	res *registry.Result
	err error
}

type tapWatcher struct {
	inner   registry.Watcher
	log     *watchLog
	results chan rawResult
	pending *registry.Result // returned by the last Next, not yet recorded

	stopOnce sync.Once
	stopped  chan struct{}
}

func (w *tapWatcher) read() {
	for {
		res, err := w.inner.Next()
		select {
		case w.results <- rawResult{res, err}:
		case <-w.stopped:
			return
		}
		if err != nil {
			return
		}
	}
}

// Next records the previous result, which the caller has finished with
// once it calls Next again, and returns the next raw result.
func (w *tapWatcher) Next() (*registry.Result, error) {
	if w.pending != nil {
		w.log.addRaw(w.pending)
		w.pending = nil
	}
	select {
	case r := <-w.results:
		if r.err != nil {
			return nil, r.err
		}
		w.pending = r.res
		return r.res, nil
	case <-w.stopped:
		return nil, registry.ErrWatcherStopped
	}
}

func (w *tapWatcher) Stop() {
	w.stopOnce.Do(func() {
		close(w.stopped)
		w.inner.Stop()
	})
}

// startWatch starts a signet watcher on service over inner, reading with a
// verifier whose clock is now, and records its results until the test
// ends. With restart, a watcher that fails is replaced after 100 ms, as
// go-micro's registry cache replaces its watchers.
func (f *fixture) startWatch(t *testing.T, inner registry.Registry, now func() time.Time, service string, restart bool) *watchLog {
	t.Helper()
	log := &watchLog{}
	reader := f.wrap(t, &tapRegistry{Registry: inner, log: log}, nil, now)

	var mu sync.Mutex
	var current registry.Watcher
	stopped := false
	done := make(chan struct{})

	watch := func() (registry.Watcher, error) {
		w, err := reader.Watch(registry.WatchService(service))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			w.Stop()
			return nil, registry.ErrWatcherStopped
		}
		current = w
		return w, nil
	}

	w, err := watch()
	if err != nil {
		t.Fatalf("start signet watcher on %s: %v", service, err)
	}

	go func() {
		defer close(done)
		for {
			res, err := w.Next()
			if err == nil {
				log.addOut(res)
				continue
			}

			mu.Lock()
			isStopped := stopped
			mu.Unlock()
			if isStopped {
				return
			}
			log.addErr(err)
			if !restart {
				return
			}

			w.Stop()
			for {
				time.Sleep(100 * time.Millisecond)
				if w, err = watch(); err == nil {
					break
				}
				if errors.Is(err, registry.ErrWatcherStopped) {
					return
				}
				log.addErr(err)
			}
			log.mu.Lock()
			log.restarts++
			log.mu.Unlock()
		}
	}()

	t.Cleanup(func() {
		mu.Lock()
		stopped = true
		if current != nil {
			current.Stop()
		}
		mu.Unlock()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("signet watcher on %s did not stop within 10 s", service)
		}
	})
	return log
}
