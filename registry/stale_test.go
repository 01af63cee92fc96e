package registry_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
)

func deregisterInner(t *testing.T, e *env, ids ...string) {
	t.Helper()
	svc := &registry.Service{Name: "greeter", Version: "latest"}
	for _, id := range ids {
		svc.Nodes = append(svc.Nodes, &registry.Node{Id: id})
	}
	if err := e.inner.Deregister(svc); err != nil {
		t.Fatal(err)
	}
}

func TestServeStaleMassDeletion(t *testing.T) {
	e := newEnv(t, signet.WithServeStale(5*time.Minute))
	for _, id := range []string{"greeter-1", "greeter-2"} {
		if err := e.reg.Register(testid.Service("greeter", id, "10.0.0.1:"+id[len(id)-1:])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}

	// An attacker deletes every node: the last verified ones are served
	// within the window, and each stale answer is observed and logged.
	deregisterInner(t, e, "greeter-1", "greeter-2")
	e.clock.Advance(4 * time.Minute)
	got, err := e.reg.GetService("greeter")
	if err != nil {
		t.Fatalf("GetService within the window: %v", err)
	}
	if ids := nodeIDs(got); len(ids) != 2 {
		t.Fatalf("stale answer nodes = %v, want both", ids)
	}
	if e.observer.StaleAnswers("greeter") != 1 {
		t.Errorf("stale answers observed = %d, want 1", e.observer.StaleAnswers("greeter"))
	}
	if !strings.Contains(e.logs.String(), "serve-stale") {
		t.Errorf("the stale answer was not logged:\n%s", e.logs)
	}

	// Past the window: not found.
	e.clock.Advance(time.Minute + time.Second)
	if _, err := e.reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService past the window err = %v, want ErrNotFound", err)
	}
}

func TestServeStaleOnlyRogueLeft(t *testing.T) {
	// The registry suddenly holds only poisoned records: the last verified
	// nodes are served, never the rogue ones.
	e := newEnv(t, signet.WithServeStale(5*time.Minute))
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}
	deregisterInner(t, e, "greeter-1")
	if err := e.inner.Register(testid.Service("greeter", "rogue", "10.6.6.6:9000")); err != nil {
		t.Fatal(err)
	}
	got, err := e.reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(got); len(ids) != 1 || ids[0] != "greeter-1" {
		t.Fatalf("nodes = %v, want the stale greeter-1 only", ids)
	}
}

func TestServeStaleNotPastRecordExpiry(t *testing.T) {
	// The window is an hour, the record lives 10 minutes: a stale node is
	// never served past its record's expiry.
	e := newEnv(t, signet.WithServeStale(time.Hour))
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}
	deregisterInner(t, e, "greeter-1")

	e.clock.Advance(9 * time.Minute)
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatalf("GetService before the record expires: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := e.reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService after the record expired err = %v, want ErrNotFound", err)
	}
}

func TestServeStaleOffByDefault(t *testing.T) {
	e := newEnv(t)
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}
	deregisterInner(t, e, "greeter-1")
	if _, err := e.reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService without serve-stale err = %v, want ErrNotFound", err)
	}
	if e.observer.StaleAnswers("greeter") != 0 {
		t.Error("stale answer without serve-stale")
	}
}

func TestServeStaleWatchDelete(t *testing.T) {
	e := newEnv(t, signet.WithServeStale(5*time.Minute))
	results := watch(t, e.reg)
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if res := next(t, results); res.Action != "update" {
		t.Fatalf("first result %q", res.Action)
	}

	// Deleting the last node within the window is held back.
	deregisterInner(t, e, "greeter-1")
	waitFor(t, "the held-back deletion", func() bool { return e.observer.StaleAnswers("greeter") == 1 })

	// A later genuine registration comes through, and the deletion was
	// not passed on before it.
	if err := e.reg.Register(testid.Service("greeter", "greeter-2", "10.0.0.2:9000")); err != nil {
		t.Fatal(err)
	}
	waitResult(t, results, "update", "greeter-2", "delete")

	// A deletion that leaves nodes passes at once.
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	waitResult(t, results, "update", "greeter-1", "")
	deregisterInner(t, e, "greeter-1")
	waitResult(t, results, "delete", "greeter-1", "")

	// Past the window, deleting the last node passes.
	e.clock.Advance(6 * time.Minute)
	deregisterInner(t, e, "greeter-2")
	waitResult(t, results, "delete", "greeter-2", "")
}

// waitResult reads results until one has action and a node id, failing
// on a result whose action is forbidden. The memory registry sends each
// event from its own goroutine, so results may arrive out of order.
func waitResult(t *testing.T, results <-chan *registry.Result, action, id, forbidden string) {
	t.Helper()
	for {
		res := next(t, results)
		if res.Action == forbidden {
			t.Fatalf("unexpected %s result for %v", res.Action, nodeIDs([]*registry.Service{res.Service}))
		}
		if res.Action != action {
			continue
		}
		for _, n := range res.Service.Nodes {
			if n.Id == id {
				return
			}
		}
	}
}

func TestServeStaleBounds(t *testing.T) {
	e := newEnv(t)
	for _, d := range []time.Duration{-time.Second, signet.MaxServeStale + time.Second} {
		if _, err := signet.New(e.inner, signet.WithVerifier(e.reg.Verifier()), signet.WithServeStale(d)); err == nil {
			t.Errorf("New accepted a serve-stale window of %v", d)
		}
	}
}
