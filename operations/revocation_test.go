package operations

import (
	"path/filepath"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/verify"
)

// testRevocation edits a revocation list file as an operator does. A
// "jti" line drops the node with that token, and a "kid" line drops every
// node whose token that issuer key signed. Removing the lines restores
// them. Each change applies from the next lookup and watch result on.
func testRevocation(t *testing.T, b *target) {
	service := uniqueName("revocation")
	clock := testid.NewClock(time.Now())
	first := newIssuerKey(t, "ops-1", clock.Now)
	second := newIssuerKey(t, "ops-2", clock.Now)

	listPath := filepath.Join(t.TempDir(), "revocations.txt")
	writeList := func(lines string) {
		t.Helper()
		replaceFile(t, listPath, []byte("# revoked identities\n"+lines), 0o644)
	}
	writeList("")
	revocations, err := verify.NewFileRevocations(listPath, discard)
	if err != nil {
		t.Fatal(err)
	}
	revocations.SetInterval(0)
	verifier, err := verify.New(verify.WithBundle(bundleOf(t, first, second)), verify.WithRevocations(revocations), verify.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	log := newRecordingLogger()
	inner := &tap{Registry: b.connect(t)}
	client, err := signet.New(inner, signet.WithVerifier(verifier), signet.WithClock(clock.Now), signet.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}

	// ops-1 issued the tokens of a and b, ops-2 the token of c.
	a := startNode(t, b, service, "a", "127.0.0.1:19201", first)
	bn := startNode(t, b, service, "b", "127.0.0.1:19202", first)
	c := startNode(t, b, service, "c", "127.0.0.1:19203", second)
	waitLookup(t, client, service, "a", "b", "c")
	w := openWatch(t, client, service)
	w.sync(t, c)

	// without returns a check that fails the test for a watch result that
	// holds any of the revoked nodes.
	without := func(revoked ...string) func(*registry.Result) {
		return func(res *registry.Result) {
			t.Helper()
			for _, id := range revoked {
				if resultNode(res, id) != nil {
					t.Errorf("watch result %s holds the revoked node %s", describe(res), id)
				}
			}
		}
	}
	// changeUnseen registers a change of n, waits until the backend's
	// watch result for it reached the signet watcher, and then registers
	// a change of the node that shows, whose result has to come next.
	changeUnseen := func(n, shows *node, check func(*registry.Result)) *registry.Result {
		t.Helper()
		w.request()
		n.change(t)
		inner.waitFor(t, "the backend's watch result for node "+n.id+"'s change", func(res *registry.Result) bool { return hasRound(res, n.id, n.round) })
		shows.change(t)
		return w.readUntil(t, shows.id, shows.round, check)
	}

	// Revoke a's token.
	writeList("jti " + a.jti + "\n")
	expectLookup(t, client, service, "b", "c")
	if got := log.matching(logger.WarnLevel, "node rejected", map[string]string{"node": "a", "reason": "revoked", "jti": a.jti}); len(got) != 1 {
		t.Errorf("rejection log lines for node a = %v, want one with reason revoked and its jti\n%s", got, log.text())
	}
	res := changeUnseen(a, bn, without("a"))
	if b.fullResults && resultNode(res, "c") == nil {
		t.Errorf("watch result %s lacks node c", describe(res))
	}

	// Revoke the issuer key ops-1 as well: b goes too.
	writeList("jti " + a.jti + "\nkid " + first.kid + "\n")
	expectLookup(t, client, service, "c")
	if got := log.matching(logger.WarnLevel, "node rejected", map[string]string{"node": "b", "reason": "revoked", "kid": first.kid}); len(got) != 1 {
		t.Errorf("rejection log lines for node b = %v, want one with reason revoked and kid %s\n%s", got, first.kid, log.text())
	}
	changeUnseen(bn, c, without("a", "b"))
	if stored := b.stored(t, service); len(stored) != 3 {
		t.Errorf("the server stores %d nodes of %s, want all 3: the revoked ones were dropped by signet, not removed", len(stored), service)
	}

	// Removing the lines restores both.
	writeList("")
	expectLookup(t, client, service, "a", "b", "c")
	a.change(t)
	res = w.readUntil(t, "a", a.round, func(*registry.Result) {})
	if b.fullResults && (resultNode(res, "b") == nil || resultNode(res, "c") == nil) {
		t.Errorf("watch result %s after the lines were removed lacks node b or c", describe(res))
	}
}
