package main

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/verify"
)

// rejection is a node rejection that signet logged.
type rejection struct {
	reason string // code from verify.Reason
	err    string // error message of the rejection

	// afterLookup is set when the rejection was logged after the client's
	// first lookup had finished.
	afterLookup bool
}

// rejectionStore keeps the first rejection signet logged for each node id.
// It is safe for concurrent use.
type rejectionStore struct {
	mu          sync.Mutex
	afterLookup bool
	byNode      map[string]rejection
}

func newRejectionStore() *rejectionStore {
	return &rejectionStore{byNode: map[string]rejection{}}
}

func (s *rejectionStore) add(nodeID, reason, err string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byNode[nodeID]; !ok {
		s.byNode[nodeID] = rejection{reason: reason, err: err, afterLookup: s.afterLookup}
	}
}

func (s *rejectionStore) get(nodeID string) (rejection, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byNode[nodeID]
	return r, ok
}

// markLookupDone marks the rejections logged from now on as logged after
// the first lookup.
func (s *rejectionStore) markLookupDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterLookup = true
}

// rejectionRecorder is the go-micro logger of the signet client's
// registry. It keeps signet's node rejection lines in a [rejectionStore],
// which the demo prints next to each attack, and passes every other line
// to next.
type rejectionRecorder struct {
	fields map[string]any
	store  *rejectionStore
	next   logger.Logger
}

var _ logger.Logger = (*rejectionRecorder)(nil)

func newRejectionRecorder(store *rejectionStore, next logger.Logger) *rejectionRecorder {
	return &rejectionRecorder{store: store, next: next}
}

// Init does nothing: the options belong to next, which is shared.
func (r *rejectionRecorder) Init(...logger.Option) error { return nil }

func (r *rejectionRecorder) Options() logger.Options { return r.next.Options() }

func (r *rejectionRecorder) Fields(fields map[string]any) logger.Logger {
	merged := maps.Clone(r.fields)
	if merged == nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, fields)
	return &rejectionRecorder{fields: merged, store: r.store, next: r.next.Fields(fields)}
}

// Log stores a line that carries the node and reason fields of signet's
// rejection lines, and passes any other line on.
func (r *rejectionRecorder) Log(level logger.Level, v ...any) {
	node, hasNode := r.fields["node"].(string)
	reason, hasReason := r.fields["reason"].(string)
	if hasNode && hasReason {
		msg, _ := r.fields["error"].(string)
		r.store.add(unquote(node), reason, unquote(msg))
		return
	}
	r.next.Log(level, v...)
}

// unquote undoes the Go quoting that signet applies to a logged value that
// contains spaces, quotes or '='. The demo prints only values of records it
// wrote itself.
func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

func (r *rejectionRecorder) Logf(level logger.Level, format string, v ...any) {
	r.next.Logf(level, format, v...)
}

func (r *rejectionRecorder) String() string { return "signet-demo-recorder" }

// resultCounter is the signet client registry's observer. It counts
// lookup and watch results and rejected nodes.
type resultCounter struct {
	lookups  atomic.Int64
	watches  atomic.Int64
	rejected atomic.Int64
}

func (c *resultCounter) NodeVerified(string) {}

func (c *resultCounter) NodeRejected(string, string) { c.rejected.Add(1) }

func (c *resultCounter) Verified(operation string, _ time.Duration) {
	switch operation {
	case "lookup":
		c.lookups.Add(1)
	case "watch":
		c.watches.Add(1)
	}
}

func (c *resultCounter) ServedStale(string) {}

// outcome is what became of one attack.
type outcome struct {
	line    string
	dropped bool
}

// judge reports whether signet dropped attack a. view contains the node ids
// in the signet client's selector, and stored the backend's nodes by id.
// watchOnly is set when the signet client made no lookup after its first,
// so that every later rejection came from a watch result.
func judge(a *attack, store *rejectionStore, view map[string]bool, stored map[string]*registry.Node, v *verify.Verifier, watchOnly bool) outcome {
	when := "before the first lookup"
	if a.afterLookup {
		when = "after the first lookup"
	}
	head := fmt.Sprintf("(%s) %s: %s", a.label, when, a.description)
	id := a.node().Id

	if view[id] {
		return outcome{line: head + " -> NOT dropped: the signet client's selector contains it"}
	}

	if rej, ok := store.get(id); ok {
		path := "at lookup"
		switch {
		case rej.afterLookup && watchOnly:
			path = "from a watch result"
		case rej.afterLookup:
			path = "after the first lookup"
		}
		return outcome{line: fmt.Sprintf("%s -> dropped %s: %s (%s)", head, path, rej.reason, rej.err), dropped: true}
	}

	// The signet client never saw the node; check the stored record.
	node, ok := stored[id]
	if !ok {
		return outcome{line: head + " -> not in the backend at the end of the run, so nothing to drop"}
	}
	_, err := v.VerifyNode(a.service.Name, a.service.Version, node)
	if err == nil {
		return outcome{line: head + " -> NOT dropped: the stored record passes verification"}
	}
	return outcome{line: fmt.Sprintf("%s -> never reached the signet client; the stored record fails verification: %s (%v)", head, verify.Reason(err), err), dropped: true}
}
