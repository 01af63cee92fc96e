package registry_test

import (
	"maps"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
)

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5 s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the next result within 5 s.
func next(t *testing.T, results <-chan *registry.Result) *registry.Result {
	t.Helper()
	select {
	case res := <-results:
		return res
	case <-time.After(5 * time.Second):
		t.Fatal("no watch result within 5 s")
		return nil
	}
}

func TestWatchDropsRogueNodes(t *testing.T) {
	e := newEnv(t)
	results := watch(t, e.reg)

	genuine := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	if err := e.reg.Register(genuine); err != nil {
		t.Fatal(err)
	}
	if res := next(t, results); res.Action != "update" || len(res.Service.Nodes) != 1 || res.Service.Nodes[0].Id != "greeter-1" {
		t.Fatalf("first result = %+v", res)
	}
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}

	// After the first lookup, an attacker writes to the registry: an
	// unsigned node, a genuine record copied to another id and address,
	// and a tampered copy of the genuine node under its own id.
	signed, _, err := e.reg.Signer().Sign(genuine)
	if err != nil {
		t.Fatal(err)
	}
	copied := testid.CloneNode(signed.Nodes[0])
	copied.Id, copied.Address = "rogue-copy", "10.6.6.6:9000"
	tampered := testid.CloneNode(signed.Nodes[0])
	tampered.Address = "10.6.6.7:9000"
	rogues := []*registry.Service{
		testid.Service("greeter", "rogue-unsigned", "10.6.6.5:9000"),
		{Name: "greeter", Version: "latest", Nodes: []*registry.Node{copied}},
		{Name: "greeter", Version: "latest", Nodes: []*registry.Node{tampered}},
		{Name: "greeter", Version: "evil", Nodes: []*registry.Node{testid.CloneNode(signed.Nodes[0])}},
	}
	// The memory registry ignores a second registration of a node id, so
	// the attacker deletes greeter-1 before writing the tampered copy.
	if err := e.inner.Deregister(&registry.Service{Name: "greeter", Version: "latest", Nodes: []*registry.Node{{Id: "greeter-1"}}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rogues {
		if err := e.inner.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the watcher to reject the rogue results", func() bool {
		return e.observer.Rejections("unsigned")+e.observer.Rejections("bad-signature") >= len(rogues)
	})

	// A genuine node registered after the rogue ones is the next result:
	// everything before it was skipped.
	second := testid.Service("greeter", "greeter-2", "10.0.0.2:9000")
	if err := e.reg.Register(second); err != nil {
		t.Fatal(err)
	}
	for {
		res := next(t, results)
		if res.Action == "delete" {
			continue
		}
		for _, n := range res.Service.Nodes {
			if n.Id != "greeter-1" && n.Id != "greeter-2" {
				t.Fatalf("watch passed on rogue node %s at %s", n.Id, n.Address)
			}
			if n.Id == "greeter-1" && n.Address != "10.0.0.1:9000" {
				t.Fatalf("watch passed on a tampered greeter-1 at %s", n.Address)
			}
		}
		if len(res.Service.Nodes) == 1 && res.Service.Nodes[0].Id == "greeter-2" {
			break
		}
	}

	// GetService agrees: only greeter-2 is left, because the tampered
	// greeter-1 replaced the genuine record in the registry.
	got, err := e.reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		for _, n := range s.Nodes {
			if n.Id != "greeter-1" && n.Id != "greeter-2" {
				t.Fatalf("GetService passed on %s", n.Id)
			}
		}
	}
}

func TestWatchMixedResultKeepsGenuine(t *testing.T) {
	// An attacker registers a service holding a replay of the genuine
	// record next to a rogue node: the result keeps only the genuine one,
	// and the rogue endpoints are not passed on.
	e := newEnv(t)
	results := watch(t, e.reg)
	genuine := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	signed, _, err := e.reg.Signer().Sign(genuine)
	if err != nil {
		t.Fatal(err)
	}
	mixed := testid.CloneService(signed)
	mixed.Endpoints = []*registry.Endpoint{{Name: "Greeter.Exfiltrate"}}
	mixed.Nodes = append(mixed.Nodes, &registry.Node{Id: "rogue", Address: "10.6.6.6:1", Metadata: maps.Clone(genuine.Nodes[0].Metadata)})
	if err := e.inner.Register(mixed); err != nil {
		t.Fatal(err)
	}

	res := next(t, results)
	if len(res.Service.Nodes) != 1 || res.Service.Nodes[0].Id != "greeter-1" {
		t.Fatalf("result nodes = %v, want only greeter-1", nodeIDs([]*registry.Service{res.Service}))
	}
	if len(res.Service.Endpoints) != 0 {
		t.Fatalf("rogue endpoints passed on: %v", res.Service.Endpoints)
	}

	// The genuine endpoints, signed by the genuine node, do pass.
	resigned, _, err := e.reg.Signer().Sign(withVersion(testid.CloneService(genuine), "2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.inner.Register(resigned); err != nil {
		t.Fatal(err)
	}
	res = next(t, results)
	if record.DigestEndpoints(res.Service.Endpoints) != record.DigestEndpoints(genuine.Endpoints) {
		t.Fatalf("genuine endpoints dropped: %v", res.Service.Endpoints)
	}
}

func TestWatchDeletionsPass(t *testing.T) {
	e := newEnv(t)
	results := watch(t, e.reg)
	svc := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	if err := e.reg.Register(svc); err != nil {
		t.Fatal(err)
	}
	if res := next(t, results); res.Action != "update" {
		t.Fatalf("first result %q", res.Action)
	}

	// go-micro deregisters with nodes that carry no metadata, so a
	// deletion cannot be verified and passes as it is.
	if err := e.reg.Deregister(&registry.Service{Name: "greeter", Version: "latest", Nodes: []*registry.Node{{Id: "greeter-1"}}}); err != nil {
		t.Fatal(err)
	}
	res := next(t, results)
	if res.Action != "delete" || len(res.Service.Nodes) != 1 || res.Service.Nodes[0].Id != "greeter-1" {
		t.Fatalf("delete result = %+v", res)
	}

	// A rogue deletion by an attacker passes too; serve-stale is the
	// defence against that.
	if err := e.reg.Register(svc); err != nil {
		t.Fatal(err)
	}
	next(t, results)
	if err := e.inner.Deregister(&registry.Service{Name: "greeter", Version: "latest", Nodes: []*registry.Node{{Id: "greeter-1"}}}); err != nil {
		t.Fatal(err)
	}
	if res := next(t, results); res.Action != "delete" {
		t.Fatalf("rogue delete result %q", res.Action)
	}
}

func TestWatchStopEndsNext(t *testing.T) {
	e := newEnv(t)
	w, err := e.reg.Watch()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Next()
		done <- err
	}()
	w.Stop()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Next returned no error after Stop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return within 5 s of Stop")
	}
}
