package operations

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
	util "go-micro.dev/v4/util/registry"

	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// Timeouts of the waits in this package. Each is far above what the
// servers need on a loaded two-core machine, so a wait that runs out
// points at a real failure.
const (
	pollTimeout  = 20 * time.Second
	pollInterval = 20 * time.Millisecond

	// watchTimeout bounds the wait for one expected watch result.
	watchTimeout = 10 * time.Second

	// resendAfter is how long a node change may go unseen by a new
	// watcher before it is made again, because etcd registers a watch
	// shortly after the client asks for it and misses writes in between.
	resendAfter = 2 * time.Second
)

// registerTTL is the TTL of every registration, long enough that no lease
// or TTL check expires during a run.
const registerTTL = 10 * time.Minute

// discardLogger is a go-micro logger that drops every line.
type discardLogger struct{}

func (discardLogger) Init(...logger.Option) error           { return nil }
func (discardLogger) Options() logger.Options               { return logger.Options{Level: logger.FatalLevel} }
func (l discardLogger) Fields(map[string]any) logger.Logger { return l }
func (discardLogger) Log(logger.Level, ...any)              {}
func (discardLogger) Logf(logger.Level, string, ...any)     {}
func (discardLogger) String() string                        { return "discard" }

var discard logger.Logger = discardLogger{}

// logEntry is one line that a recordingLogger received.
type logEntry struct {
	level   logger.Level
	message string
	fields  map[string]any
}

func (e logEntry) String() string {
	return fmt.Sprintf("%s %q %v", e.level, e.message, e.fields)
}

// recordingLogger is a go-micro logger that keeps every line with its
// level and fields. The tests read it instead of an output buffer,
// because the default logger of go-micro v4.11.0 ignores
// logger.WithOutput and prints to standard output.
type recordingLogger struct {
	mu      *sync.Mutex
	entries *[]logEntry
	fields  map[string]any
}

var _ logger.Logger = (*recordingLogger)(nil)

func newRecordingLogger() *recordingLogger {
	return &recordingLogger{mu: new(sync.Mutex), entries: new([]logEntry)}
}

func (l *recordingLogger) Init(...logger.Option) error { return nil }
func (l *recordingLogger) Options() logger.Options     { return logger.Options{Level: logger.TraceLevel} }
func (l *recordingLogger) String() string              { return "recording" }

// Fields returns a logger that adds fields to every line and records
// into the same list.
func (l *recordingLogger) Fields(fields map[string]any) logger.Logger {
	merged := make(map[string]any, len(l.fields)+len(fields))
	for k, v := range l.fields {
		merged[k] = v
	}
	for k, v := range fields {
		merged[k] = v
	}
	return &recordingLogger{mu: l.mu, entries: l.entries, fields: merged}
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
	*l.entries = append(*l.entries, logEntry{level: level, message: message, fields: l.fields})
}

// all returns a copy of the recorded lines.
func (l *recordingLogger) all() []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logEntry(nil), *l.entries...)
}

// matching returns the lines at level whose message contains text and
// whose fields include every pair of fields, compared as printed.
func (l *recordingLogger) matching(level logger.Level, text string, fields map[string]string) []logEntry {
	var out []logEntry
	for _, e := range l.all() {
		if e.level != level || !strings.Contains(e.message, text) {
			continue
		}
		ok := true
		for k, want := range fields {
			if got, present := e.fields[k]; !present || fmt.Sprint(got) != want {
				ok = false
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// text returns every recorded line, one a line, for failure messages.
func (l *recordingLogger) text() string {
	var b strings.Builder
	for _, e := range l.all() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// poll calls cond every pollInterval until it returns true, and fails the
// test with what when pollTimeout passes first.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", pollTimeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// uniqueName returns prefix with a random suffix, so that the cases that
// share a server never see each other's services.
func uniqueName(prefix string) string {
	var b [3]byte
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// replaceFile replaces the file at path the way a deployment does: it
// writes a temporary file in the same directory and renames it over path.
func replaceFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		t.Fatalf("creating a temporary file next to %s: %v", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatalf("writing %s: %v", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		t.Fatalf("setting the mode of %s: %v", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatalf("closing %s: %v", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatalf("renaming %s to %s: %v", tmp.Name(), path, err)
	}
}

// issuerKey is an issuer key pair with its key id.
type issuerKey struct {
	kid    string
	issuer *signing.Issuer
	public ed25519.PublicKey
}

func newIssuerKey(t *testing.T, kid string, now func() time.Time) *issuerKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &issuerKey{kid: kid, issuer: &signing.Issuer{Key: priv, KeyID: kid, Name: "ops", Now: now}, public: pub}
}

// token issues a token for nodeKey that allows service, and returns it
// with its id.
func (is *issuerKey) token(t *testing.T, nodeKey ed25519.PublicKey, service string, lifetime time.Duration) (token, jti string) {
	t.Helper()
	token, err := is.issuer.Issue(signing.Identity{Subject: service, NodeKey: nodeKey, Services: []string{service}, Lifetime: lifetime})
	if err != nil {
		t.Fatalf("issuing a token with key %s: %v", is.kid, err)
	}
	return token, tokenID(t, token)
}

// tokenID returns the "jti" claim of token, decoded without verification.
func tokenID(t *testing.T, token string) string {
	t.Helper()
	claims := &signing.Claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("decoding a token: %v", err)
	}
	return claims.ID
}

// bundleOf returns the trust bundle of keys.
func bundleOf(t *testing.T, keys ...*issuerKey) *verify.Bundle {
	t.Helper()
	var list []verify.IssuerKey
	for _, k := range keys {
		list = append(list, verify.IssuerKey{ID: k.kid, Key: k.public})
	}
	b, err := verify.NewBundle(list...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwks returns the trust bundle of keys as a JWK Set.
func jwks(t *testing.T, keys ...*issuerKey) []byte {
	t.Helper()
	data, err := bundleOf(t, keys...).MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeBundle replaces the trust bundle file at path with a JWK Set of
// keys.
func writeBundle(t *testing.T, path string, keys ...*issuerKey) {
	t.Helper()
	replaceFile(t, path, jwks(t, keys...), 0o644)
}

// node is a genuine node of a service. Its signer reads the node key and
// the identity token from files, checked at every registration, and it
// registers through a signet wrapper over a plain registry of its own.
type node struct {
	service string
	id      string
	address string

	key       ed25519.PrivateKey
	tokenPath string
	jti       string

	reg   *signet.Registry
	round int
}

// startNode writes a node key and a token from issuer into files for a
// new node of service, and registers the node.
func startNode(t *testing.T, b *target, service, id, address string, issuer *issuerKey) *node {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := signing.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	keyPath, tokenPath := filepath.Join(dir, id+".key"), filepath.Join(dir, id+".jwt")
	replaceFile(t, keyPath, keyPEM, 0o600)
	token, jti := issuer.token(t, key.Public().(ed25519.PublicKey), service, time.Hour)
	replaceFile(t, tokenPath, []byte(token+"\n"), 0o600)

	creds, err := signing.NewFileCredentials(keyPath, tokenPath, discard)
	if err != nil {
		t.Fatal(err)
	}
	creds.SetInterval(0)
	signer, err := signing.NewSigner(creds)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := verify.New(verify.WithBundle(bundleOf(t, issuer)))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := signet.New(b.connect(t), signet.WithSigner(signer), signet.WithVerifier(verifier), signet.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}

	n := &node{service: service, id: id, address: address, key: key, tokenPath: tokenPath, jti: jti, reg: reg, round: 1}
	n.register(t)
	t.Cleanup(func() {
		if err := reg.Deregister(n.registration()); err != nil {
			t.Logf("deregistering node %s at cleanup: %v", id, err)
		}
	})
	return n
}

// registration returns the service that the node registers, with its
// round number in the node metadata.
func (n *node) registration() *registry.Service {
	svc := &registry.Service{
		Name:    n.service,
		Version: "latest",
		Nodes: []*registry.Node{{
			Id:       n.id,
			Address:  n.address,
			Metadata: map[string]string{"server": "mucp", "transport": "http", "round": strconv.Itoa(n.round)},
		}},
	}
	return svc
}

// register registers the node, as the go-micro server's heartbeat does.
func (n *node) register(t *testing.T) {
	t.Helper()
	if err := n.reg.Register(n.registration(), registry.RegisterTTL(registerTTL)); err != nil {
		t.Fatalf("registering node %s of %s: %v", n.id, n.service, err)
	}
}

// change registers the node with the next round number, so that the
// backend stores a new record and sends watchers a result for it.
func (n *node) change(t *testing.T) {
	t.Helper()
	n.round++
	n.register(t)
}

// reissue replaces the node's token file with a token from issuer for the
// same node key, as a renewal job does, and returns the new token id. The
// node signs with it from its next registration on.
func (n *node) reissue(t *testing.T, issuer *issuerKey) string {
	t.Helper()
	token, jti := issuer.token(t, n.key.Public().(ed25519.PublicKey), n.service, time.Hour)
	replaceFile(t, n.tokenPath, []byte(token+"\n"), 0o600)
	n.jti = jti
	return jti
}

// tap is a registry that passes every call to the registry it embeds and
// keeps a copy of each result its watchers return, which is what a signet
// wrapper over it receives before filtering.
type tap struct {
	registry.Registry

	mu      sync.Mutex
	results []*registry.Result
}

func (tp *tap) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	w, err := tp.Registry.Watch(opts...)
	if err != nil {
		return nil, err
	}
	return &tapWatcher{Watcher: w, tap: tp}, nil
}

type tapWatcher struct {
	registry.Watcher
	tap *tap
}

func (w *tapWatcher) Next() (*registry.Result, error) {
	res, err := w.Watcher.Next()
	if err == nil && res != nil && res.Service != nil {
		w.tap.mu.Lock()
		w.tap.results = append(w.tap.results, &registry.Result{Action: res.Action, Service: util.CopyService(res.Service)})
		w.tap.mu.Unlock()
	}
	return res, err
}

// waitFor polls until a result that the inner watcher returned matches.
func (tp *tap) waitFor(t *testing.T, what string, match func(*registry.Result) bool) {
	t.Helper()
	poll(t, what, func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		for _, res := range tp.results {
			if match(res) {
				return true
			}
		}
		return false
	})
}

// watchReader reads a watcher one result at a time. It calls the
// watcher's Next only when the test requests a result, so a signet
// watcher filters each result it returns with the trust bundle and
// revocation list of that moment or later.
type watchReader struct {
	w       registry.Watcher
	results chan watchResult
	pending bool
}

type watchResult struct {
	res *registry.Result
	err error
}

// openWatch opens a watch of service on reg and stops it at cleanup.
func openWatch(t *testing.T, reg registry.Registry, service string) *watchReader {
	t.Helper()
	w, err := reg.Watch(registry.WatchService(service))
	if err != nil {
		t.Fatalf("watching %s: %v", service, err)
	}
	t.Cleanup(w.Stop)
	return &watchReader{w: w, results: make(chan watchResult, 1)}
}

// request calls the watcher's Next in the background, unless a call is
// pending already; next returns its result. A signet watcher consumes
// the inner watcher's results only during such a call.
func (r *watchReader) request() {
	if r.pending {
		return
	}
	r.pending = true
	go func() {
		res, err := r.w.Next()
		r.results <- watchResult{res, err}
	}()
}

// next returns the next result, or nil when none arrives within timeout.
// After a timeout the call stays pending, and the next call returns its
// result.
func (r *watchReader) next(t *testing.T, timeout time.Duration) *registry.Result {
	t.Helper()
	r.request()
	select {
	case got := <-r.results:
		r.pending = false
		if got.err != nil {
			t.Fatalf("watcher stopped: %v", got.err)
		}
		return got.res
	case <-time.After(timeout):
		return nil
	}
}

// readUntil reads results until one contains node id in round, passes
// every result it reads to check first, and fails the test when none
// arrives within watchTimeout.
func (r *watchReader) readUntil(t *testing.T, id string, round int, check func(*registry.Result)) *registry.Result {
	t.Helper()
	deadline := time.Now().Add(watchTimeout)
	for {
		res := r.next(t, time.Until(deadline))
		if res == nil {
			t.Fatalf("no watch result with node %s in round %d within %v", id, round, watchTimeout)
		}
		check(res)
		if hasRound(res, id, round) {
			return res
		}
	}
}

// sync changes n until a watch result shows the change, and discards the
// results before it, so that the results read next follow what the test
// does next.
func (r *watchReader) sync(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(watchTimeout)
	for time.Now().Before(deadline) {
		n.change(t)
		resend := time.Now().Add(resendAfter)
		for time.Now().Before(resend) {
			if res := r.next(t, time.Until(resend)); res != nil && hasRound(res, n.id, n.round) {
				return
			}
		}
	}
	t.Fatalf("the watcher returned no result for changes of node %s within %v", n.id, watchTimeout)
}

// resultNode returns the node with id in a watch result, or nil.
func resultNode(res *registry.Result, id string) *registry.Node {
	if res == nil || res.Service == nil {
		return nil
	}
	for _, n := range res.Service.Nodes {
		if n != nil && n.Id == id {
			return n
		}
	}
	return nil
}

// hasRound reports whether a create or update result holds node id with
// round number round.
func hasRound(res *registry.Result, id string, round int) bool {
	n := resultNode(res, id)
	return res.Action != "delete" && n != nil && n.Metadata["round"] == strconv.Itoa(round)
}

// describe returns the action and node ids of a watch result.
func describe(res *registry.Result) string {
	var ids []string
	for _, n := range res.Service.Nodes {
		ids = append(ids, n.Id+"#"+n.Metadata["round"])
	}
	return res.Action + " " + strings.Join(ids, ",")
}

// lookupIDs returns the sorted ids of the nodes that reg returns for
// service, or the lookup's error.
func lookupIDs(reg registry.Registry, service string) ([]string, error) {
	services, err := reg.GetService(service)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, svc := range services {
		for _, n := range svc.Nodes {
			ids = append(ids, n.Id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// expectLookup makes one lookup of service and fails the test unless it
// returns exactly the nodes want.
func expectLookup(t *testing.T, reg registry.Registry, service string, want ...string) {
	t.Helper()
	sort.Strings(want)
	got, err := lookupIDs(reg, service)
	if err != nil {
		t.Fatalf("GetService(%s) = %v, want nodes %v", service, err, want)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("GetService(%s) returned nodes %v, want %v", service, got, want)
	}
}

// waitStored polls until the server stores exactly the nodes want of
// service and each node's record satisfies ready, when ready is not nil.
func waitStored(t *testing.T, b *target, service string, ready func(id string, md map[string]string) bool, want ...string) map[string]map[string]string {
	t.Helper()
	sort.Strings(want)
	var nodes map[string]map[string]string
	poll(t, fmt.Sprintf("the %s server to store nodes %v of %s", b.name, want, service), func() bool {
		nodes = b.stored(t, service)
		ids := make([]string, 0, len(nodes))
		for id, md := range nodes {
			if ready != nil && !ready(id, md) {
				return false
			}
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return strings.Join(ids, " ") == strings.Join(want, " ")
	})
	return nodes
}

// waitLookup polls reg until a lookup of service returns exactly the
// nodes want. The go-micro consul plugin reads Consul's health endpoint,
// which shows a new registration shortly after the catalog does.
func waitLookup(t *testing.T, reg registry.Registry, service string, want ...string) {
	t.Helper()
	sort.Strings(want)
	var got []string
	var err error
	deadline := time.Now().Add(pollTimeout)
	for {
		got, err = lookupIDs(reg, service)
		if err == nil && strings.Join(got, " ") == strings.Join(want, " ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetService(%s) returned nodes %v (error %v) for %v, want %v", service, got, err, pollTimeout, want)
		}
		time.Sleep(pollInterval)
	}
}

// counter returns the value of the counter name with the given labels
// that reg gathers, or 0 when reg has no such series.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			match := len(got) == len(labels)
			for k, v := range labels {
				match = match && got[k] == v
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
