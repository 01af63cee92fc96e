package registry_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
)

func TestPermissivePassesAndCounts(t *testing.T) {
	e := newEnv(t, signet.WithMode(signet.Permissive))
	if e.reg.Mode() != signet.Permissive {
		t.Fatalf("Mode = %q", e.reg.Mode())
	}
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	rogue := testid.Service("greeter", "rogue-1", "10.6.6.6:9000")
	if err := e.inner.Register(rogue); err != nil {
		t.Fatal(err)
	}

	got, err := e.reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(got); !slices.Equal(ids, []string{"greeter-1", "rogue-1"}) {
		t.Fatalf("permissive nodes = %v, want both", ids)
	}
	if n := e.observer.Rejections("unsigned"); n != 1 {
		t.Errorf("unsigned rejections observed = %d, want 1", n)
	}
	if n := e.observer.VerifiedNodes("greeter"); n != 1 {
		t.Errorf("verified nodes observed = %d, want 1", n)
	}
	if n := e.observer.Results("lookup"); n != 1 {
		t.Errorf("lookups observed = %d, want 1", n)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "permissive mode") || !strings.Contains(logs, "rogue-1") || !strings.Contains(logs, "reason=unsigned") {
		t.Errorf("the failing node was not logged with its id and reason:\n%s", logs)
	}
	if len(got[0].Endpoints) == 0 {
		t.Error("permissive mode emptied the endpoints")
	}
}

func TestPermissiveWatch(t *testing.T) {
	e := newEnv(t, signet.WithMode(signet.Permissive))
	results := watch(t, e.reg)
	if err := e.inner.Register(testid.Service("greeter", "rogue-1", "10.6.6.6:9000")); err != nil {
		t.Fatal(err)
	}
	res := next(t, results)
	if len(res.Service.Nodes) != 1 || res.Service.Nodes[0].Id != "rogue-1" {
		t.Fatalf("permissive watch result = %v, want the rogue node", nodeIDs([]*registry.Service{res.Service}))
	}
	waitFor(t, "the rejection count", func() bool { return e.observer.Rejections("unsigned") == 1 })
	if e.observer.Results("watch") != 1 {
		t.Errorf("watch results observed = %d, want 1", e.observer.Results("watch"))
	}
}

func TestEnforceLogRateLimited(t *testing.T) {
	// A flood of lookups of one rogue node writes one log line per
	// interval, with the repeats counted.
	e := newEnv(t)
	if err := e.reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if err := e.inner.Register(testid.Service("greeter", "rogue-1", "10.6.6.6:9000")); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := e.reg.GetService("greeter"); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(e.logs.String(), "node rejected"); n != 1 {
		t.Fatalf("100 lookups wrote %d rejection lines, want 1", n)
	}
	if n := e.observer.Rejections("unsigned"); n != 100 {
		t.Errorf("rejections observed = %d, want every one of 100", n)
	}
	e.clock.Advance(61 * time.Second)
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "repeats=100") {
		t.Errorf("the repeats were not counted in the next line:\n%s", e.logs)
	}
}

func TestModeParse(t *testing.T) {
	for _, s := range []string{"enforce", "permissive"} {
		if m, err := signet.ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Enforce", "off", "audit"} {
		if _, err := signet.ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) succeeded", s)
		}
	}
	e := newEnv(t)
	if _, err := signet.New(e.inner, signet.WithVerifier(e.reg.Verifier()), signet.WithMode("off")); err == nil {
		t.Error("New accepted mode \"off\"")
	}
}
