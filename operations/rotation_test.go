package operations

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/verify"
)

// testKeyRotation rotates the issuer key the way docs/operations.md
// describes it, with a trust bundle file that the client reloads: publish
// the new key next to the old one, re-issue tokens with the new key, then
// remove the old key. Old-key nodes verify until the old key leaves the
// bundle, and are dropped from the next lookup and the next watch result
// after that, while new-key nodes stay.
func testKeyRotation(t *testing.T, b *target) {
	service := uniqueName("rotation")
	clock := testid.NewClock(time.Now())
	oldKey := newIssuerKey(t, "issuer-2025", clock.Now)
	newKey := newIssuerKey(t, "issuer-2026", clock.Now)

	bundlePath := filepath.Join(t.TempDir(), "bundle.jwks")
	writeBundle(t, bundlePath, oldKey)
	bundle, err := verify.NewFileBundle(bundlePath, discard)
	if err != nil {
		t.Fatal(err)
	}
	bundle.SetInterval(0)
	verifier, err := verify.New(verify.WithBundle(bundle), verify.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	log := newRecordingLogger()
	inner := &tap{Registry: b.connect(t)}
	client, err := signet.New(inner, signet.WithVerifier(verifier), signet.WithClock(clock.Now), signet.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}

	// Nodes a and b hold tokens of the old key.
	a := startNode(t, b, service, "a", "127.0.0.1:19001", oldKey)
	bn := startNode(t, b, service, "b", "127.0.0.1:19002", oldKey)
	waitLookup(t, client, service, "a", "b")

	// Step 1: the bundle trusts both keys.
	writeBundle(t, bundlePath, oldKey, newKey)
	expectLookup(t, client, service, "a", "b")

	// Step 2: b is re-issued a token by the new key and re-registers; c
	// starts with a new-key token. a still runs with its old-key token.
	bn.reissue(t, newKey)
	bn.change(t)
	c := startNode(t, b, service, "c", "127.0.0.1:19003", newKey)
	waitStored(t, b, service, func(id string, md map[string]string) bool {
		return id != "b" || md["round"] == "2"
	}, "a", "b", "c")
	waitLookup(t, client, service, "a", "b", "c")
	assertKeyID(t, b, client, service, map[string]string{"a": oldKey.kid, "b": newKey.kid, "c": newKey.kid})

	w := openWatch(t, client, service)
	w.sync(t, c)

	// Step 3: the old key leaves the bundle. The next lookup drops a,
	// whose record the server still stores.
	writeBundle(t, bundlePath, newKey)
	expectLookup(t, client, service, "b", "c")
	if _, ok := b.stored(t, service)["a"]; !ok {
		t.Fatal("the server no longer stores node a; the lookup did not have to drop it")
	}
	if got := log.matching(logger.WarnLevel, "node rejected", map[string]string{"node": "a", "reason": "unknown-issuer-key", "kid": oldKey.kid}); len(got) != 1 {
		t.Errorf("rejection log lines for node a = %v, want one with reason unknown-issuer-key and kid %s\n%s", got, oldKey.kid, log.text())
	}

	// The next watch result drops a: a registers a change, which the
	// backend sends, and c registers one after it.
	noOldKey := func(res *registry.Result) {
		t.Helper()
		if resultNode(res, "a") != nil {
			t.Errorf("watch result %s holds node a, signed by the removed key", describe(res))
		}
	}
	w.request()
	a.change(t)
	inner.waitFor(t, "the backend's watch result for node a's change", func(res *registry.Result) bool { return hasRound(res, "a", a.round) })
	c.change(t)
	res := w.readUntil(t, "c", c.round, noOldKey)
	if b.fullResults && resultNode(res, "b") == nil {
		t.Errorf("watch result %s lacks the new-key node b", describe(res))
	}
	expectLookup(t, client, service, "b", "c")
}

// assertKeyID checks that each node the server stores verifies through
// client's verifier with a token of the issuer key want[id].
func assertKeyID(t *testing.T, b *target, client *signet.Registry, service string, want map[string]string) {
	t.Helper()
	for id, md := range b.stored(t, service) {
		rec, err := client.Verifier().VerifyNode(service, "latest", &registry.Node{Id: id, Address: addressOf(t, client, service, id), Metadata: md})
		if err != nil {
			t.Errorf("node %s does not verify: %v", id, err)
			continue
		}
		if rec.Identity.KeyID != want[id] {
			t.Errorf("node %s verifies with a token of key %s, want %s", id, rec.Identity.KeyID, want[id])
		}
	}
}

// addressOf returns the address of node id as a lookup through the
// client's inner registry returns it.
func addressOf(t *testing.T, client *signet.Registry, service, id string) string {
	t.Helper()
	services, err := client.Inner().GetService(service)
	if err != nil {
		t.Fatalf("looking up %s through the plain registry: %v", service, err)
	}
	for _, svc := range services {
		for _, n := range svc.Nodes {
			if n.Id == id {
				return n.Address
			}
		}
	}
	t.Fatalf("the plain registry has no node %s of %s", id, service)
	return ""
}

// TestBundleReplacedWithinTick replaces the trust bundle file twice by
// rename with content of the same size and the same modification time,
// as two writes within one step of Linux's file time clock get. The
// second bundle must still be loaded.
func TestBundleReplacedWithinTick(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.jwks")
	first := newIssuerKey(t, "issuer-2025", time.Now)
	second := newIssuerKey(t, "issuer-2026", time.Now)
	writeBundle(t, path, first)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := verify.NewFileBundle(path, discard)
	if err != nil {
		t.Fatal(err)
	}
	bundle.SetInterval(0)

	writeBundle(t, path, second)
	if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the bundles differ in size (%d, %d) or time (%v, %v); the test needs them equal", before.Size(), after.Size(), before.ModTime(), after.ModTime())
	}

	current, err := bundle.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	if ids := current.KeyIDs(); len(ids) != 1 || ids[0] != second.kid {
		t.Errorf("the bundle after the second rename has keys %v, want [%s]", ids, second.kid)
	}
}
