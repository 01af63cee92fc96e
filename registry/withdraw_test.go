package registry_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v4/registry"
	"go-micro.dev/v4/registry/cache"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/internal/testserver"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/verify"
)

// switchableRevocations is a verify.RevocationSource whose list a test
// replaces, as a reloaded revocation file would.
type switchableRevocations struct {
	list atomic.Pointer[verify.Revocations]
}

func (s *switchableRevocations) Revocations() (*verify.Revocations, error) {
	return s.list.Load(), nil
}

// withdrawEnv is two genuine greeter nodes with identities of their own, in
// a memory registry wrapped by signet, read through go-micro's registry
// cache the way the selector reads it.
type withdrawEnv struct {
	clock       *testid.Clock
	inner       registry.Registry
	reg         *signet.Registry
	cache       cache.Cache
	revocations *switchableRevocations
	tokenIDs    map[string]string // by node id
}

func newWithdrawEnv(t *testing.T, opts ...signet.Option) *withdrawEnv {
	t.Helper()
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(t, clock.Now)
	e := &withdrawEnv{clock: clock, inner: registry.NewMemoryRegistry(), revocations: &switchableRevocations{}, tokenIDs: map[string]string{}}
	e.revocations.list.Store(verify.NewRevocations(nil, nil))

	for _, id := range []string{"greeter-1", "greeter-2"} {
		creds := issuer.Node(t, id, []string{"greeter"}, nil, time.Hour)
		e.tokenIDs[id] = creds.Claims.ID
		signer := issuer.Wrap(t, e.inner, creds, clock.Now)
		if err := signer.Register(testid.Service("greeter", id, "127.0.0.1:900"+id[len(id)-1:])); err != nil {
			t.Fatal(err)
		}
	}

	verifier := issuer.Verifier(t, clock.Now, verify.WithRevocations(e.revocations))
	all := append([]signet.Option{
		signet.WithVerifier(verifier),
		signet.WithClock(clock.Now),
		signet.WithSweepInterval(20 * time.Millisecond),
		signet.WithLogger((&testid.LogBuffer{}).Logger()),
	}, opts...)
	reg, err := signet.New(e.inner, all...)
	if err != nil {
		t.Fatal(err)
	}
	e.reg = reg
	e.cache = cache.New(reg, cache.WithTTL(time.Hour))
	t.Cleanup(e.cache.Stop)
	return e
}

// cachedIDs returns the node ids the cache serves for greeter, or nil.
func (e *withdrawEnv) cachedIDs() []string {
	services, err := e.cache.GetService("greeter")
	if err != nil {
		return nil
	}
	return nodeIDs(services)
}

// waitCached polls the cache until it serves exactly want, for at most 5 s.
func (e *withdrawEnv) waitCached(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := strings.Join(e.cachedIDs(), ",")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache serves nodes %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWithdrawRevokedFromCache(t *testing.T) {
	e := newWithdrawEnv(t)
	e.waitCached(t, "greeter-1,greeter-2")

	e.revocations.list.Store(verify.NewRevocations([]string{e.tokenIDs["greeter-2"]}, nil))
	e.waitCached(t, "greeter-1")

	// The cache's own lookup agrees, so nothing brings the node back.
	services, err := e.reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(services); len(ids) != 1 || ids[0] != "greeter-1" {
		t.Fatalf("GetService after revocation = %v, want [greeter-1]", ids)
	}
}

func TestWithdrawLastNodesFromCache(t *testing.T) {
	e := newWithdrawEnv(t)
	e.waitCached(t, "greeter-1,greeter-2")

	// go-micro's cache returns its stale copy when a lookup fails, so only
	// a withdrawal removes the last nodes once they stop verifying.
	e.revocations.list.Store(verify.NewRevocations([]string{e.tokenIDs["greeter-1"], e.tokenIDs["greeter-2"]}, nil))
	e.waitCached(t, "")

	if _, err := e.reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService after revoking every node: err = %v, want ErrNotFound", err)
	}
}

func TestWithdrawExpiredFromCache(t *testing.T) {
	e := newWithdrawEnv(t)
	e.waitCached(t, "greeter-1,greeter-2")

	// Neither node re-registers, so both records pass their expiry.
	e.clock.Advance(2 * time.Hour)
	e.waitCached(t, "")
}

func TestWithdrawSkipsRenewedRecord(t *testing.T) {
	e := newWithdrawEnv(t, signet.WithSweepInterval(10*time.Millisecond))
	e.waitCached(t, "greeter-1,greeter-2")

	// A revocation of nothing leaves both nodes; several sweeps run.
	time.Sleep(100 * time.Millisecond)
	if got := strings.Join(e.cachedIDs(), ","); got != "greeter-1,greeter-2" {
		t.Fatalf("cache serves %q after sweeps with nothing revoked, want both nodes", got)
	}
}

func TestWatchNilNodeDelete(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{})
	inner := etcdTestRegistry(t, server)
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	signer := issuer.Wrap(t, inner, creds, clock.Now)
	if err := signer.Register(testid.Service("greeter", "greeter-1", "127.0.0.1:9001"), registry.RegisterTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}

	reg := issuer.Wrap(t, inner, nil, clock.Now, signet.WithServeStale(time.Minute), signet.WithLogger((&testid.LogBuffer{}).Logger()))
	c := cache.New(reg, cache.WithTTL(time.Hour))
	t.Cleanup(c.Stop)
	if _, err := c.GetService("greeter"); err != nil {
		t.Fatal(err)
	}

	// registerUntilCached registers fresh node ids until one shows up in the
	// cache, which proves the cache's watch delivers results.
	attempt := 0
	registerUntilCached := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			attempt++
			id := "greeter-probe-" + string(rune('a'+attempt%26)) + time.Now().Format("150405.000000")
			if err := signer.Register(testid.Service("greeter", id, "127.0.0.1:9002"), registry.RegisterTTL(time.Hour)); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				services, err := c.GetService("greeter")
				if err == nil && strings.Contains(strings.Join(nodeIDs(services), ","), id) {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Fatalf("no registration reached the cache through its watch %s", what)
	}
	registerUntilCached("before the attack")

	// An attacker writes a record whose only node is null, then deletes it.
	// The delete result must not reach go-micro's cache with a nil node,
	// which would crash the cache's goroutine and the process.
	client, err := clientv3.New(server.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := t.Context()
	if _, err := client.Put(ctx, "/micro/registry/greeter/rogue", `{"name":"greeter","version":"latest","nodes":[null]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Delete(ctx, "/micro/registry/greeter/rogue"); err != nil {
		t.Fatal(err)
	}

	registerUntilCached("after the null-node delete")
}

// waitWatchLive registers fresh probe nodes through signer until one shows
// up in c, which proves c's watch delivers results, then deregisters it.
func waitWatchLive(t *testing.T, signer *signet.Registry, c cache.Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		probe := testid.Service("greeter", fmt.Sprintf("greeter-probe-%d", attempt), "127.0.0.1:9009")
		if err := signer.Register(probe, registry.RegisterTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			services, err := c.GetService("greeter")
			if err == nil && strings.Contains(strings.Join(nodeIDs(services), ","), probe.Nodes[0].Id) {
				if err := signer.Deregister(probe); err != nil {
					t.Fatal(err)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatal("no registration reached the cache through its watch within 10 s")
}

func etcdTestRegistry(t *testing.T, server *testserver.Etcd) registry.Registry {
	t.Helper()
	addrs := make([]string, len(server.Endpoints))
	for i, e := range server.Endpoints {
		addrs[i] = strings.TrimPrefix(e, "http://")
	}
	return etcdNewRegistry(addrs)
}

func TestWatchForgedDeleteIgnored(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{})
	inner := etcdTestRegistry(t, server)
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	signer := issuer.Wrap(t, inner, creds, clock.Now)
	if err := signer.Register(testid.Service("greeter", "greeter-1", "127.0.0.1:9001"), registry.RegisterTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}

	reg := issuer.Wrap(t, inner, nil, clock.Now, signet.WithLogger((&testid.LogBuffer{}).Logger()))
	results := make(chan *registry.Result, 16)
	w, err := reg.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				close(results)
				return
			}
			results <- res
		}
	}()

	// A probe registration seen in the results proves the watch is live.
	probe := testid.Service("greeter", "greeter-probe", "127.0.0.1:9009")
	if err := signer.Register(probe, registry.RegisterTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	probeTimeout := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case res, ok := <-results:
			if !ok {
				t.Fatal("watcher stopped")
			}
			seen = res.Action != "delete" && len(res.Service.Nodes) > 0 && res.Service.Nodes[0].Id == "greeter-probe"
		case <-probeTimeout:
			t.Fatal("the probe registration never came through the watch")
		}
	}

	client, err := clientv3.New(server.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := t.Context()

	// The attacker files an unsigned record under the genuine node's id at
	// another key, then deletes it. The deletion must not reach the caller.
	rogue := `{"name":"greeter","version":"latest","nodes":[{"id":"greeter-1","address":"127.0.0.1:6666","metadata":{}}]}`
	if _, err := client.Put(ctx, "/micro/registry/greeter/forged", rogue); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Delete(ctx, "/micro/registry/greeter/forged"); err != nil {
		t.Fatal(err)
	}

	// A genuine deletion afterwards does reach the caller, which also shows
	// that the forged one came through the watch before it.
	if err := signer.Deregister(testid.Service("greeter", "greeter-1", "127.0.0.1:9001")); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case res, ok := <-results:
			if !ok {
				t.Fatal("watcher stopped")
			}
			if res.Action != "delete" {
				continue
			}
			if len(res.Service.Nodes) != 1 || res.Service.Nodes[0].Address != "127.0.0.1:9001" {
				t.Fatalf("delete result %+v, want only the genuine deregistration of greeter-1 at 127.0.0.1:9001", res.Service.Nodes)
			}
			return
		case <-timeout:
			t.Fatal("no delete result within 10 s")
		}
	}
}

func TestWithdrawAfterOtherLookup(t *testing.T) {
	e := newWithdrawEnv(t, signet.WithSweepInterval(200*time.Millisecond))
	e.waitCached(t, "greeter-1,greeter-2")

	// Another caller looks the service up between the revocation and the
	// next sweep; the revoked node must still be withdrawn from the cache.
	e.revocations.list.Store(verify.NewRevocations([]string{e.tokenIDs["greeter-2"]}, nil))
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatal(err)
	}
	e.waitCached(t, "greeter-1")
}

func TestWatchCopiedRecordDeleteIgnored(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{})
	inner := etcdTestRegistry(t, server)
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	signer := issuer.Wrap(t, inner, creds, clock.Now)
	for _, id := range []string{"greeter-1", "greeter-2"} {
		if err := signer.Register(testid.Service("greeter", id, "127.0.0.1:9001"), registry.RegisterTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	reg := issuer.Wrap(t, inner, nil, clock.Now, signet.WithLogger((&testid.LogBuffer{}).Logger()))
	c := cache.New(reg, cache.WithTTL(time.Hour))
	t.Cleanup(c.Stop)
	if _, err := c.GetService("greeter"); err != nil {
		t.Fatal(err)
	}

	waitWatchLive(t, signer, c)

	client, err := clientv3.New(server.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := t.Context()
	genuine, err := client.Get(ctx, "/micro/registry/greeter/greeter-2")
	if err != nil || len(genuine.Kvs) != 1 {
		t.Fatalf("reading greeter-2's record: %v (%d keys)", err, len(genuine.Kvs))
	}

	// The attacker copies greeter-2's genuine record under another key and
	// deletes the copy, several times. The cache must keep greeter-2.
	// NOTE: the pauses keep etcd from batching the events into one watch
	// response, of which the etcd plugin v1.2.0 delivers only the first.
	for i := 0; i < 3; i++ {
		if _, err := client.Put(ctx, "/micro/registry/greeter/copy", string(genuine.Kvs[0].Value)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := client.Delete(ctx, "/micro/registry/greeter/copy"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A genuine deregistration afterwards does reach the cache, which also
	// shows the copies' deletions went through the watch before it. The
	// etcd plugin can drop an event, so the deregistration is tried again
	// after a re-registration, at most three times.
	genuine1 := testid.Service("greeter", "greeter-1", "127.0.0.1:9001")
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			if err := signer.Register(genuine1, registry.RegisterTTL(time.Hour)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := signer.Deregister(genuine1); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			services, err := c.GetService("greeter")
			ids := strings.Join(nodeIDs(services), ",")
			if err == nil && !strings.Contains(ids, "greeter-2") {
				t.Fatalf("cache serves %q: the deletion of a copy removed greeter-2", ids)
			}
			if err == nil && ids == "greeter-2" {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatal("greeter-1's deregistration never reached the cache")
}
