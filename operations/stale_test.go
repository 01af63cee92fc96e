package operations

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/metrics"
	signet "github.com/signet-micro/signet/registry"
)

// testServeStale deletes every node of a service directly in the server,
// as an attacker or a faulty job with write access can. For two minutes a
// client with MICRO_REGISTRY_SERVE_STALE=2m returns the last verified
// nodes, and logs and counts each stale lookup. After that it returns
// registry.ErrNotFound.
func testServeStale(t *testing.T, b *target) {
	service := uniqueName("stale")
	clock := testid.NewClock(time.Now())
	issuer := newIssuerKey(t, "ops-stale", time.Now)
	startNode(t, b, service, "g1", "127.0.0.1:19401", issuer)
	startNode(t, b, service, "g2", "127.0.0.1:19402", issuer)

	m := metrics.New()
	gathered := prometheus.NewRegistry()
	gathered.MustRegister(m)
	log := newRecordingLogger()
	env := map[string]string{signet.EnvTrustBundle: string(jwks(t, issuer)), signet.EnvServeStale: "2m"}
	client, err := signet.FromLookup(lookupIn(env), b.connect(t), signet.WithClock(clock.Now), signet.WithObserver(m), signet.WithLogger(log))
	if err != nil {
		t.Fatalf("building a client from %v: %v", env, err)
	}
	waitLookup(t, client, service, "g1", "g2")

	b.deleteAll(t, service)
	waitStored(t, b, service, nil)
	poll(t, "the plain registry to find no node of "+service, func() bool {
		services, err := client.Inner().GetService(service)
		return errors.Is(err, registry.ErrNotFound) || (err == nil && countNodes(services) == 0)
	})

	served := func() float64 {
		t.Helper()
		return counter(t, gathered, "signet_serve_stale_total", map[string]string{"service": service})
	}
	// The last verified lookup was at the clock's start; the window is
	// measured from there.
	for i, step := range []time.Duration{time.Minute, 59 * time.Second} {
		clock.Advance(step)
		expectLookup(t, client, service, "g1", "g2")
		if got := served(); got != float64(i+1) {
			t.Errorf("signet_serve_stale_total{service=%q} = %v after %d stale lookups", service, got, i+1)
		}
	}
	if got := log.matching(logger.WarnLevel, "serve-stale", map[string]string{"service": service, "operation": "lookup"}); len(got) != 2 {
		t.Errorf("serve-stale log lines = %v, want one for each stale lookup\n%s", got, log.text())
	}

	// 2m01s after the last verified lookup the window is closed.
	clock.Advance(2 * time.Second)
	if ids, err := lookupIDs(client, service); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService(%s) after the window = %v, %v; want registry.ErrNotFound", service, ids, err)
	}
	if got := served(); got != 2 {
		t.Errorf("signet_serve_stale_total{service=%q} = %v after the window, want still 2", service, got)
	}
}

func countNodes(services []*registry.Service) int {
	n := 0
	for _, svc := range services {
		n += len(svc.Nodes)
	}
	return n
}
