package conformance

import (
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
)

// testHeartbeat checks that re-registering an unchanged service, as a
// go-micro server does every 30 s, writes nothing to the backend, and that
// the one re-registration after the record is past half its lifetime
// writes exactly once. Writes are counted where the backend keeps them:
// the version of the node's etcd key, the version of the pod's key in
// kube-apiserver's etcd, and the service registrations that reach the
// Consul agent through a counting proxy.
func testHeartbeat(t *testing.T, f *fixture) {
	if f.b.writes == nil {
		t.Skip("the memory registry keeps no revision or write count to measure writes with")
	}
	const name, heartbeats = "heartbeat", 5
	creds := f.identity(t, "heartbeat", []string{name}, nil)
	svc := service(name, "1.0.0", "127.0.0.1:9301")
	id := svc.Nodes[0].Id

	clock := testid.NewClock(f.clock.Now())
	inner, writes := f.b.writes(t, podName("g", name, id), name, id)
	w := f.wrap(t, inner, creds, clock.Now)
	register := func() {
		t.Helper()
		if err := w.Register(svc, registry.RegisterTTL(registerTTL)); err != nil {
			t.Fatalf("register %s through signet on %s: %v", name, f.b.name, err)
		}
	}
	beat := func() int {
		t.Helper()
		before := writes()
		for i := 0; i < heartbeats; i++ {
			register()
		}
		return writes() - before
	}

	before := writes()
	register()
	if n := writes() - before; n != 1 {
		t.Errorf("the first registration made %d backend writes, want 1", n)
	}
	first := w.Signer()

	unchanged := beat()
	if unchanged != 0 {
		t.Errorf("%d re-registrations of an unchanged service made %d backend writes, want 0", heartbeats, unchanged)
	}

	clock.Advance(signing.DefaultRecordTTL/2 + time.Second)
	before = writes()
	register()
	renewal := writes() - before
	if renewal != 1 {
		t.Errorf("the re-registration past half the record lifetime made %d backend writes, want 1", renewal)
	}
	afterRenewal := beat()
	if afterRenewal != 0 {
		t.Errorf("%d re-registrations after the renewal made %d backend writes, want 0", heartbeats, afterRenewal)
	}

	// The renewed record is what the backend returns, and it verifies.
	renewed, _, err := first.Sign(svc)
	if err != nil {
		t.Fatal(err)
	}
	reader := f.wrap(t, f.b.reader, nil, clock.Now)
	got := f.waitVerified(t, reader, name, id)
	if _, n := findNode(got, "1.0.0", id); n.Metadata[record.KeySignature] != renewed.Nodes[0].Metadata[record.KeySignature] {
		t.Errorf("GetService(%s) through signet returned a record other than the renewed one", name)
	}

	f.report.set("writes per heartbeat", "%d in %d heartbeats, %d at the renewal, %d in %d heartbeats after it",
		unchanged, heartbeats, renewal, afterRenewal, heartbeats)
}
