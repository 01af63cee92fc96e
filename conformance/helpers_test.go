package conformance

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
)

// Timeout and interval of the polls in this package. The timeout is
// generous, so that a poll that runs out points at a failure rather than
// at a slow machine.
const (
	pollTimeout  = 20 * time.Second
	pollInterval = 20 * time.Millisecond
)

// registerTTL is the TTL of every registration the suite makes, long
// enough that no lease or TTL check expires during a run.
const registerTTL = 10 * time.Minute

// discardLogger is a go-micro logger that drops every line. go-micro's
// default logger of v4.11.0 prints to standard output whatever its
// options are, and the tampered records of this suite make signet log
// hundreds of rejections.
type discardLogger struct{}

func (discardLogger) Init(...logger.Option) error           { return nil }
func (discardLogger) Options() logger.Options               { return logger.Options{Level: logger.FatalLevel} }
func (l discardLogger) Fields(map[string]any) logger.Logger { return l }
func (discardLogger) Log(logger.Level, ...any)              {}
func (discardLogger) Logf(logger.Level, string, ...any)     {}
func (discardLogger) String() string                        { return "discard" }

var quiet logger.Logger = discardLogger{}

// randomID returns 16 random hexadecimal characters.
func randomID() string {
	var b [8]byte
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// poll calls cond every pollInterval until it returns true, and fails the
// test with what when pollTimeout passes first.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(cond) {
		t.Fatalf("timed out after %v waiting for %s", pollTimeout, what)
	}
}

// pollUntil calls cond every pollInterval until it returns true or
// pollTimeout passes, and reports whether it returned true.
func pollUntil(cond func() bool) bool {
	return pollFor(pollTimeout, cond)
}

// pollFor is pollUntil with a timeout of d.
func pollFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// canonical returns the canonical form of a node address, or the address
// with the prefix "invalid:" when it has none.
func canonical(address string) string {
	c, err := record.CanonicalAddress(address)
	if err != nil {
		return "invalid:" + address
	}
	return c
}

// findNode returns the node with id among the nodes of services of the
// given version ("" matches every version), or nil.
func findNode(services []*registry.Service, version, id string) (*registry.Service, *registry.Node) {
	for _, svc := range services {
		if svc == nil || (version != "" && svc.Version != version) {
			continue
		}
		for _, n := range svc.Nodes {
			if n != nil && n.Id == id {
				return svc, n
			}
		}
	}
	return nil, nil
}

// sameNode reports how got differs from want, comparing addresses in
// canonical form because Consul rebuilds them, or "" when they match.
func sameNode(got, want *registry.Node) string {
	switch {
	case got == nil:
		return "node missing"
	case got.Id != want.Id:
		return "node id " + got.Id + ", want " + want.Id
	case canonical(got.Address) != canonical(want.Address):
		return "address " + got.Address + ", want " + want.Address
	case len(got.Metadata) != len(want.Metadata):
		return fmt.Sprintf("metadata has %d pairs, want %d", len(got.Metadata), len(want.Metadata))
	}
	for k, v := range want.Metadata {
		if gv, ok := got.Metadata[k]; !ok {
			return "metadata key " + k + " missing"
		} else if gv != v {
			return "metadata key " + k + " changed"
		}
	}
	return ""
}

// singleNode returns svc with only node n. go-micro servers register one
// node per call, and the Consul plugin registers only the first node of a
// service.
func singleNode(svc *registry.Service, n *registry.Node) *registry.Service {
	return &registry.Service{Name: svc.Name, Version: svc.Version, Metadata: svc.Metadata, Endpoints: svc.Endpoints, Nodes: []*registry.Node{n}}
}

// countingProxy is a real HTTP reverse proxy on 127.0.0.1 in front of a
// Consul agent. It counts the service registrations (PUT
// /v1/agent/service/register) that pass through it, which are the writes
// of service records that the go-micro consul plugin makes. The plugin's
// heartbeat of an unchanged service is a TTL check pass instead.
type countingProxy struct {
	addr      string
	registers atomic.Int64
}

// startCountingProxy starts a counting proxy in front of the Consul agent
// at target, a host:port, until the test ends.
func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatalf("parse Consul address %q: %v", target, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the counting proxy on 127.0.0.1: %v", err)
	}

	p := &countingProxy{addr: l.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(u)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/v1/agent/service/register" {
			p.registers.Add(1)
		}
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// randomString returns n characters from [a-z0-9].
func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
