package operations

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go-micro.dev/v4/broker"
	"go-micro.dev/v4/client"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
	"go-micro.dev/v4/selector"
	"go-micro.dev/v4/server"
	"go-micro.dev/v4/transport"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/metrics"
	signet "github.com/signet-micro/signet/registry"
)

const callTimeout = 5 * time.Second

// HelloRequest is the request of Greeter.Hello.
type HelloRequest struct {
	Name string `json:"name"`
}

// HelloResponse is the response of Greeter.Hello.
type HelloResponse struct {
	Greeting string `json:"greeting"`
}

// Greeter is the handler of a service that has not moved to signet yet.
// It counts the calls it serves.
type Greeter struct {
	calls atomic.Int64
}

// Hello returns a greeting for every request.
func (g *Greeter) Hello(_ context.Context, req *HelloRequest, rsp *HelloResponse) error {
	g.calls.Add(1)
	rsp.Greeting = "hello " + req.Name
	return nil
}

// startUnsigned starts a go-micro rpc server named name on 127.0.0.1
// that registers through the plain registry reg, as a service that has
// not moved to signet does, and returns its handler and node id.
func startUnsigned(t *testing.T, reg registry.Registry, name string) (*Greeter, string) {
	t.Helper()
	// server.DefaultId is one value per process; servers need their own.
	id := uuid.New().String()
	srv := server.NewServer(
		server.Name(name),
		server.Id(id),
		server.Address("127.0.0.1:0"),
		server.Registry(reg),
		server.Broker(broker.NewBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))),
		server.Transport(transport.NewHTTPTransport()),
		server.RegisterTTL(registerTTL),
	)
	handler := &Greeter{}
	if err := srv.Handle(srv.NewHandler(handler)); err != nil {
		t.Fatalf("adding the Greeter handler: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("starting the %s server: %v", name, err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping the %s server: %v", name, err)
		}
	})
	return handler, name + "-" + id
}

// call makes one call of Greeter.Hello on service through a new go-micro
// client whose selector reads reg.
func call(t *testing.T, reg registry.Registry, service string) error {
	t.Helper()
	sel := selector.NewSelector(selector.Registry(reg))
	defer sel.Close()
	c := client.NewClient(
		client.Selector(sel),
		client.Registry(reg),
		client.Transport(transport.NewHTTPTransport()),
		client.Broker(broker.NewBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))),
		client.PoolSize(0),
		client.Retries(0),
		client.RequestTimeout(callTimeout),
	)
	var rsp HelloResponse
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return c.Call(ctx, c.NewRequest(service, "Greeter.Hello", &HelloRequest{Name: "ops"}), &rsp)
}

// testPermissiveRollout runs a client with MICRO_REGISTRY_VERIFY_MODE=
// permissive next to a service that has not moved to signet: its unsigned
// node still gets lookups and calls, and every failure is logged and
// counted in signet_nodes_rejected_total. With enforce, the node is gone.
func testPermissiveRollout(t *testing.T, b *target) {
	legacy, migrated := uniqueName("legacy"), uniqueName("migrated")
	clock := testid.NewClock(time.Now())
	issuer := newIssuerKey(t, "ops-rollout", time.Now)

	handler, legacyID := startUnsigned(t, b.connect(t), legacy)
	startNode(t, b, migrated, "migrated-1", "127.0.0.1:19301", issuer)
	waitStored(t, b, legacy, nil, legacyID)
	waitStored(t, b, migrated, nil, "migrated-1")

	m := metrics.New()
	gathered := prometheus.NewRegistry()
	gathered.MustRegister(m)
	log := newRecordingLogger()
	clientIn := func(mode string) *signet.Registry {
		t.Helper()
		env := map[string]string{signet.EnvTrustBundle: string(jwks(t, issuer)), signet.EnvVerifyMode: mode}
		r, err := signet.FromLookup(lookupIn(env), b.connect(t), signet.WithObserver(m), signet.WithLogger(log), signet.WithClock(clock.Now))
		if err != nil {
			t.Fatalf("building a client from %v: %v", env, err)
		}
		return r
	}
	rejected := func() float64 {
		t.Helper()
		return counter(t, gathered, "signet_nodes_rejected_total", map[string]string{"service": legacy, "reason": "unsigned"})
	}

	permissive := clientIn("permissive")
	waitLookup(t, permissive, legacy, legacyID)
	before := rejected()
	for range 2 {
		expectLookup(t, permissive, legacy, legacyID)
	}
	expectLookup(t, permissive, migrated, "migrated-1")
	if got := rejected() - before; got != 2 {
		t.Errorf("signet_nodes_rejected_total{service=%q,reason=\"unsigned\"} rose by %v in 2 lookups, want 2", legacy, got)
	}
	if got := counter(t, gathered, "signet_nodes_verified_total", map[string]string{"service": migrated}); got < 1 {
		t.Errorf("signet_nodes_verified_total{service=%q} = %v, want at least 1", migrated, got)
	}
	for _, reason := range []string{"unsigned", "bad-signature", "unknown-issuer-key"} {
		if got := counter(t, gathered, "signet_nodes_rejected_total", map[string]string{"service": migrated, "reason": reason}); got != 0 {
			t.Errorf("signet_nodes_rejected_total{service=%q,reason=%q} = %v, want 0", migrated, reason, got)
		}
	}

	// Repeats of one failure within the log interval are counted, and the
	// next line reports how many.
	lines := func() []logEntry {
		return log.matching(logger.WarnLevel, "passed on in permissive mode", map[string]string{"node": legacyID, "reason": "unsigned"})
	}
	if got := lines(); len(got) != 1 || got[0].fields["repeats"] != 1 {
		t.Errorf("permissive log lines for %s = %v, want one with repeats 1\n%s", legacyID, got, log.text())
	}
	clock.Advance(2 * time.Minute)
	expectLookup(t, permissive, legacy, legacyID)
	if got := lines(); len(got) != 2 || got[1].fields["repeats"] != int(before)+2 {
		t.Errorf("permissive log lines for %s after the log interval = %v, want a second one with repeats %d", legacyID, got, int(before)+2)
	}

	if err := call(t, permissive, legacy); err != nil {
		t.Fatalf("calling the unsigned %s through a permissive client: %v", legacy, err)
	}
	if handler.calls.Load() != 1 {
		t.Errorf("the unsigned server served %d calls, want 1", handler.calls.Load())
	}

	// Enforce drops the unsigned node and keeps the migrated one.
	enforce := clientIn("enforce")
	if _, err := enforce.GetService(legacy); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService(%s) with enforce = %v, want registry.ErrNotFound", legacy, err)
	}
	expectLookup(t, enforce, migrated, "migrated-1")
	afterEnforce := rejected()
	err := call(t, enforce, legacy)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("calling the unsigned %s through an enforcing client: %v, want a not-found error", legacy, err)
	}
	if handler.calls.Load() != 1 {
		t.Errorf("the unsigned server served %d calls, want still 1", handler.calls.Load())
	}
	if rejected() <= afterEnforce {
		t.Errorf("signet_nodes_rejected_total for %s did not rise with the enforcing call", legacy)
	}
	if got := log.matching(logger.WarnLevel, "node rejected", map[string]string{"node": legacyID, "reason": "unsigned"}); len(got) == 0 {
		t.Errorf("no enforce rejection log line for %s:\n%s", legacyID, log.text())
	}
}
