// Package conformance runs one suite of signet tests against every
// backend: go-micro's memory registry, etcd (plain, and with client TLS and
// authentication), Consul (ACLs off, and on with least-privilege service
// tokens) and kube-apiserver, all real servers on loopback from
// internal/testserver. Each case writes genuine records through signet and
// rogue ones through a plain registry of the same backend, and checks what
// comes back through GetService and Watch after the backend's round trip.
package conformance

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
)

func TestMain(m *testing.M) {
	// go-micro's servers, brokers and plugins log through this logger, and
	// their warnings about the suite's rogue records would bury the output.
	logger.DefaultLogger = logger.NewLogger(logger.WithLevel(logger.ErrorLevel))
	os.Exit(m.Run())
}

// backends lists the backends of the suite. The kubernetes entry sets
// $HOSTNAME, so no entry runs in parallel.
var backends = []struct {
	name  string
	start func(t *testing.T) *target
}{
	{"memory", startMemory},
	{"etcd", func(t *testing.T) *target { return startEtcd(t, false) }},
	{"etcd-tls-auth", func(t *testing.T) *target { return startEtcd(t, true) }},
	{"consul", func(t *testing.T) *target { return startConsul(t, false) }},
	{"consul-acl", func(t *testing.T) *target { return startConsul(t, true) }},
	{"kubernetes", startKube},
}

// cases lists the cases that run against every backend, in order. "down"
// stops the backend's server, so it comes last.
var cases = []struct {
	name string
	run  func(t *testing.T, f *fixture)
}{
	{"roundtrip", testRoundTrip},
	{"tamper", testTamper},
	{"rogue-first", testRogueFirst},
	{"heartbeat", testHeartbeat},
	{"limits", testLimits},
	{"acl", testACL},
	{"e2e", testEndToEnd},
	{"down", testBackendDown},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			start := time.Now()
			f := newFixture(t, b.start(t))
			t.Logf("%s: servers ready in %v", b.name, time.Since(start).Round(time.Millisecond))

			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, f) })
			}
			t.Logf("%s: %s (%v in all)", b.name, f.report, time.Since(start).Round(time.Millisecond))
		})
	}
}

// fixture is what the cases of one backend share.
type fixture struct {
	b      *target
	clock  *testid.Clock
	issuer *testid.Issuer

	// reader is a verifying wrapper, without a signer, over b.reader.
	reader *signet.Registry

	report *report
}

func newFixture(t *testing.T, b *target) *fixture {
	clock := testid.NewClock(time.Now())
	f := &fixture{b: b, clock: clock, issuer: testid.NewIssuer(t, clock.Now), report: &report{values: map[string]string{}}}
	f.reader = f.wrap(t, b.reader, nil, clock.Now)
	return f
}

// wrap returns a signet wrapper over inner that verifies with the
// fixture's issuer at now and, when creds is not nil, signs with creds.
func (f *fixture) wrap(t *testing.T, inner registry.Registry, creds *signing.Credentials, now func() time.Time, signerOpts ...signing.SignerOption) *signet.Registry {
	t.Helper()
	opts := []signet.Option{
		signet.WithVerifier(f.issuer.Verifier(t, now)),
		signet.WithClock(now),
		signet.WithLogger(quiet),
	}
	if creds != nil {
		opts = append(opts, signet.WithSigner(testid.Signer(t, creds, now, signerOpts...)))
	}
	r, err := signet.New(inner, opts...)
	if err != nil {
		t.Fatalf("wrap %s registry: %v", inner.String(), err)
	}
	return r
}

// identity returns credentials, valid for a day, that allow services and
// topics.
func (f *fixture) identity(t *testing.T, subject string, services, topics []string) *signing.Credentials {
	t.Helper()
	return f.issuer.Node(t, subject, services, topics, 24*time.Hour)
}

// register signs svc with creds and registers it through signet and a
// genuine registry of the backend, one node per call, and returns the
// signed records exactly as the wrapper wrote them.
func (f *fixture) register(t *testing.T, creds *signing.Credentials, svc *registry.Service, signerOpts ...signing.SignerOption) *registry.Service {
	t.Helper()
	return f.registerAt(t, creds, svc, f.clock.Now, signerOpts...)
}

// registerAt is register with a signer whose clock is now.
func (f *fixture) registerAt(t *testing.T, creds *signing.Credentials, svc *registry.Service, now func() time.Time, signerOpts ...signing.SignerOption) *registry.Service {
	t.Helper()
	signed := &registry.Service{Name: svc.Name, Version: svc.Version, Metadata: svc.Metadata, Endpoints: svc.Endpoints}
	for _, n := range svc.Nodes {
		one := singleNode(svc, n)
		w := f.wrap(t, f.b.genuine(t, podName("g", svc.Name, n.Id), svc.Name), creds, now, signerOpts...)
		if err := w.Register(one, registry.RegisterTTL(registerTTL)); err != nil {
			t.Fatalf("register %s node %s through signet on %s: %v", svc.Name, n.Id, f.b.name, err)
		}

		// The signer returns the record it wrote, byte for byte, while
		// the record is younger than half its lifetime.
		again, _, err := w.Signer().Sign(one)
		if err != nil {
			t.Fatal(err)
		}
		signed.Nodes = append(signed.Nodes, again.Nodes[0])
	}
	return signed
}

// attack writes every node of svc to the backend through a plain registry,
// one node per call, as an attacker with write access does.
func (f *fixture) attack(t *testing.T, svc *registry.Service) {
	t.Helper()
	for _, n := range svc.Nodes {
		a := f.b.attacker(t, podName("a", svc.Name, n.Id), svc.Name)
		if err := a.Register(singleNode(svc, n), registry.RegisterTTL(registerTTL)); err != nil {
			t.Fatalf("attacker: register %s node %s through the plain %s registry: %v", svc.Name, n.Id, f.b.name, err)
		}
	}
}

// waitRaw polls the plain registry until service has every node in ids,
// and returns the services it returned then.
func (f *fixture) waitRaw(t *testing.T, service string, ids ...string) []*registry.Service {
	t.Helper()
	var services []*registry.Service
	poll(t, fmt.Sprintf("nodes %q of %s in the plain %s registry", ids, service, f.b.name), func() bool {
		var err error
		if services, err = f.b.reader.GetService(service); err != nil {
			return false
		}
		for _, id := range ids {
			if _, n := findNode(services, "", id); n == nil {
				return false
			}
		}
		return true
	})
	return services
}

// waitVerified polls the verifying reader until service has every node in
// ids, and returns the services it returned then.
func (f *fixture) waitVerified(t *testing.T, reader *signet.Registry, service string, ids ...string) []*registry.Service {
	t.Helper()
	var services []*registry.Service
	var lastErr error
	poll(t, fmt.Sprintf("nodes %q of %s through signet on %s", ids, service, f.b.name), func() bool {
		services, lastErr = reader.GetService(service)
		if lastErr != nil {
			return false
		}
		for _, id := range ids {
			if _, n := findNode(services, "", id); n == nil {
				return false
			}
		}
		return true
	})
	return services
}

// report collects the numbers of one backend's run.
type report struct {
	mu     sync.Mutex
	counts [4]int // round-tripped, dropped, tampers rejected, tampers written
	values map[string]string
}

func (r *report) add(i, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[i] += n
}

func (r *report) set(key, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[key] = fmt.Sprintf(format, args...)
}

const (
	roundTripped = iota
	genuineDropped
	tampersRejected
	tampersWritten
)

func (r *report) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := []string{
		fmt.Sprintf("records round-tripped %d, genuine nodes dropped %d, tampers rejected %d of %d",
			r.counts[roundTripped], r.counts[genuineDropped], r.counts[tampersRejected], r.counts[tampersWritten]),
	}
	keys := make([]string, 0, len(r.values))
	for k := range r.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+" "+r.values[k])
	}
	return strings.Join(parts, "; ")
}
