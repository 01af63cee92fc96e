package conformance

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-micro/plugins/v4/registry/etcd"
	"go-micro.dev/v4/registry"
	regcache "go-micro.dev/v4/registry/cache"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/registry/backend"
)

// maxErrorDelay bounds how long a lookup may take to fail while the
// backend is down.
const maxErrorDelay = 15 * time.Second

// monitor looks a service up every 50 ms through each of a set of
// registries, as clients keep doing during an outage, and records every
// node it was given that is not on the allowed list.
type monitor struct {
	mu      sync.Mutex
	allowed map[string]bool
	rogue   []string
	lookups int
	errors  int

	stop chan struct{}
	done chan struct{}
}

func startMonitor(t *testing.T, service string, allowed []string, regs ...registry.Registry) *monitor {
	m := &monitor{allowed: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	m.allow(allowed...)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, r := range regs {
				services, err := r.GetService(service)
				m.record(services, err)
			}
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(m.finish)
	return m
}

func (m *monitor) allow(ids ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.allowed[id] = true
	}
}

func (m *monitor) record(services []*registry.Service, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if err != nil {
		m.errors++
	}
	for _, s := range services {
		for _, n := range s.Nodes {
			if !m.allowed[n.Id] {
				m.rogue = append(m.rogue, n.Id+"@"+n.Address)
			}
		}
	}
}

// finish stops the monitor and returns the nodes it was given that it
// did not allow.
func (m *monitor) finish() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

func (m *monitor) result() (rogue []string, lookups, errs int) {
	m.finish()
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.rogue...), m.lookups, m.errors
}

// lookupWhileDown checks that a verified lookup of service fails with the
// backend's error within maxErrorDelay, and returns how long it took.
func lookupWhileDown(t *testing.T, f *fixture, service string) time.Duration {
	t.Helper()
	start := time.Now()
	services, err := f.reader.GetService(service)
	elapsed := time.Since(start)
	switch {
	case err == nil:
		t.Errorf("GetService(%s) through signet with the %s server down returned %s and no error", service, f.b.name, describe(services))
	case errors.Is(err, registry.ErrNotFound):
		t.Errorf("GetService(%s) through signet with the %s server down returned ErrNotFound instead of the backend's error", service, f.b.name)
	}
	if services != nil {
		t.Errorf("GetService(%s) through signet with the %s server down returned nodes: %s", service, f.b.name, describe(services))
	}
	if elapsed > maxErrorDelay {
		t.Errorf("GetService(%s) through signet with the %s server down took %v, more than %v", service, f.b.name, elapsed, maxErrorDelay)
	}
	return elapsed
}

// testBackendDown stops the backend's server and checks that a verified
// lookup returns the backend's error in bounded time and no node. It is
// the last case of the suite because the server stays down.
func testBackendDown(t *testing.T, f *fixture) {
	if f.b.stop == nil {
		t.Skip("the memory registry runs inside the test process and cannot go down")
	}
	const name = "down"
	creds := f.identity(t, "down", []string{name}, nil)
	svc := service(name, "1.0.0", "127.0.0.1:9701")
	f.register(t, creds, svc)
	f.waitVerified(t, f.reader, name, svc.Nodes[0].Id)

	f.b.stop()
	elapsed := lookupWhileDown(t, f, name)
	f.report.set("lookup with the server down", "failed after %v", elapsed.Round(time.Microsecond))
}

// TestFaultEtcdUnresponsive points a verifying wrapper at a TCP listener
// on 127.0.0.1 that accepts connections and never responds, and checks that
// a lookup fails within maxErrorDelay.
//
// NOTE: there is no Consul variant. backend.New sets no HTTP timeout for
// Consul, and the consul plugin (v1.2.1) probes /v1/agent/host when it is
// built, so against such a listener backend.New did not return within 20 s.
func TestFaultEtcdUnresponsive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})

	b := &target{name: "unresponsive etcd", reader: newInner(t, backend.Config{Registry: backend.Etcd, Addresses: []string{l.Addr().String()}})}
	f := newFixture(t, b)
	elapsed := lookupWhileDown(t, f, "greeter")
	t.Logf("lookup against an etcd address that never answers failed after %v", elapsed.Round(time.Microsecond))
}

// TestFaultEtcdRestart stops etcd while a signet watcher, a go-micro
// registry cache and a polling client are reading, and starts it again.
// The attacker writes a rogue node while etcd is down (its client retries
// until the server is back) and more after the restart. The watcher must
// recover, the cache must see a genuine node registered after the
// restart, and no reader may ever be given a rogue node.
//
// The go-micro etcd plugin's watcher (v1.2.0) returns only the first event
// of each etcd watch response and drops the rest. After a reconnect, etcd
// sends every event since the last one seen in one response, so the
// write made during the outage may never reach any watcher. The test
// therefore waits for the watcher to recover before the next writes, and
// writes them one at a time.
func TestFaultEtcdRestart(t *testing.T) {
	b := startEtcd(t, false)
	f := newFixture(t, b)
	const name = "fault-etcd"
	creds := f.identity(t, "fault", []string{name}, nil)

	before := f.register(t, creds, service(name, "1.0.0", "127.0.0.1:9801"))
	genuineID := before.Nodes[0].Id
	watch := f.startWatch(t, b.reader, f.clock.Now, name, true)
	cache := regcache.New(f.reader)
	t.Cleanup(cache.Stop)
	f.waitVerified(t, f.reader, name, genuineID)
	if _, err := cache.GetService(name); err != nil {
		t.Fatalf("GetService(%s) through the registry cache: %v", name, err)
	}
	mon := startMonitor(t, name, []string{genuineID}, cache, f.reader)

	// The attacker's client connects now, while etcd is up, with a
	// timeout that outlasts the outage.
	attacker := etcd.NewRegistry(registry.Addrs(strings.TrimPrefix(b.endpoints[0], "http://")), registry.Timeout(time.Minute))
	during := firstNode(before)
	during.Nodes[0].Id = "rogue-during"
	during.Nodes[0].Address = "127.0.0.1:6666"

	b.stop()
	written := make(chan error, 1)
	go func() { written <- attacker.Register(during, registry.RegisterTTL(registerTTL)) }()
	outage := lookupWhileDown(t, f, name)
	b.restart()
	restarted := time.Now()

	select {
	case err := <-written:
		if err != nil {
			t.Fatalf("the attacker's write during the outage failed after the restart: %v", err)
		}
	case <-time.After(pollTimeout):
		t.Fatalf("the attacker's write during the outage did not finish within %v of the restart", pollTimeout)
	}
	f.waitRaw(t, name, "rogue-during")

	// A new genuine node every 2 s until the watcher reports one shows
	// that the watcher has recovered.
	var recovered time.Duration
	poll(t, "a genuine node registered after the restart in the signet watch results", func() bool {
		probe := service(name, "1.0.0", "127.0.0.1:9802")
		probe.Nodes[0].Id = "genuine-after-restart-" + randomID()
		mon.allow(probe.Nodes[0].Id)
		f.register(t, creds, probe)
		seen := pollFor(2*time.Second, func() bool {
			_, out := watch.snapshot()
			return len(resultNodes(out, probe.Nodes[0].Id)) > 0
		})
		recovered = time.Since(restarted)
		return seen
	})

	after := testid.CloneService(before)
	after.Nodes[0].Address = "127.0.0.1:6667"
	unsigned := service(name, "1.0.0", "127.0.0.1:6668")
	unsigned.Nodes[0].Id = "rogue-unsigned"
	marker := service(name, "1.0.0", "127.0.0.1:9803")
	marker.Nodes[0].Id = "genuine-marker"
	mon.allow(marker.Nodes[0].Id)

	f.attack(t, after)
	watch.waitRaw(t, "the forged copy of the genuine node", genuineID)
	f.attack(t, unsigned)
	watch.waitRaw(t, "the unsigned rogue node", "rogue-unsigned")
	f.register(t, creds, marker)
	out := watch.waitRaw(t, "the genuine marker node", marker.Nodes[0].Id)
	watch.waitOut(t, "the genuine marker node", marker.Nodes[0].Id)

	for _, id := range []string{"rogue-during", "rogue-unsigned"} {
		if nodes := resultNodes(out, id); len(nodes) > 0 {
			t.Errorf("the signet watcher returned rogue node %s at %s", id, nodes[0].Address)
		}
	}
	for _, n := range resultNodes(out, genuineID) {
		if canonical(n.Address) != canonical(before.Nodes[0].Address) {
			t.Errorf("the signet watcher returned the genuine node %s at the forged address %s", genuineID, n.Address)
		}
	}
	poll(t, "the genuine marker node in the registry cache", func() bool {
		services, err := cache.GetService(name)
		_, n := findNode(services, "", marker.Nodes[0].Id)
		return err == nil && n != nil
	})

	rogue, lookups, errs := mon.result()
	if len(rogue) > 0 {
		t.Errorf("readers were given rogue nodes %q", rogue)
	}
	raw, _ := watch.snapshot()
	watch.mu.Lock()
	restarts, watchErrs := watch.restarts, len(watch.errs)
	watch.mu.Unlock()
	t.Logf("etcd restart: lookup during the outage failed after %v; watcher errors %d, restarts %d, recovered %v after the restart; the outage write reached the watcher: %v; %d lookups (%d failed), rogue nodes returned %d",
		outage.Round(time.Millisecond), watchErrs, restarts, recovered.Round(time.Millisecond), len(resultNodes(raw, "rogue-during")) > 0, lookups, errs, len(rogue))
}

// TestFaultConsulRestart restarts the Consul dev agent, which loses its
// catalog, under a genuine go-micro server that re-registers every second
// through signet. The attacker registers rogue nodes as soon as the agent
// is back, before the genuine server's next heartbeat. The signet watcher
// must recover and report the genuine node again, calls through signet
// must reach only the genuine server, and no reader may be given a rogue
// node.
func TestFaultConsulRestart(t *testing.T) {
	b := startConsul(t, false)
	f := newFixture(t, b)
	const name = "fault.consul"
	creds := f.identity(t, "fault", []string{name}, nil)

	genuine := &Greeter{From: "genuine"}
	startServer(t, f.wrap(t, b.genuine(t, "", name), creds, f.clock.Now), name, time.Second, genuine)
	var genuineID string
	poll(t, "the genuine server's node through signet", func() bool {
		services, err := f.reader.GetService(name)
		if err != nil || len(services) != 1 || len(services[0].Nodes) != 1 {
			return false
		}
		genuineID = services[0].Nodes[0].Id
		return true
	})
	raw := f.waitRaw(t, name, genuineID)
	_, genuineNode := findNode(raw, "", genuineID)

	watch := f.startWatch(t, b.reader, f.clock.Now, name, true)
	watch.waitOut(t, "the genuine node", genuineID)
	c := newClient(t, f.reader)
	if _, err := call(c, name); err != nil {
		t.Fatalf("call through signet before the restart: %v", err)
	}
	cache := regcache.New(f.reader)
	t.Cleanup(cache.Stop)
	mon := startMonitor(t, name, []string{genuineID}, cache, f.reader)

	b.stop()
	outage := lookupWhileDown(t, f, name)
	rogue := service(name, "latest", "127.0.0.1:6666")
	rogue.Nodes[0].Id = "rogue-unsigned"
	if err := b.attacker(t, "", name).Register(rogue, registry.RegisterTTL(registerTTL)); err == nil {
		t.Errorf("the attacker registered %s while the Consul agent was down", rogue.Nodes[0].Id)
	}
	_, before := watch.snapshot()
	b.restart()
	restarted := time.Now()

	forged := &registry.Service{Name: name, Version: "latest", Nodes: []*registry.Node{testid.CloneNode(genuineNode)}}
	forged.Nodes[0].Id = "rogue-copy"
	f.attack(t, rogue)
	f.attack(t, forged)

	out := watch.waitRaw(t, "the rogue nodes", "rogue-unsigned", "rogue-copy")
	poll(t, "the genuine node in a signet watch result after the restart", func() bool {
		_, out = watch.snapshot()
		return len(resultNodes(out[len(before):], genuineID)) > 0
	})
	recovered := time.Since(restarted)
	for _, id := range []string{"rogue-unsigned", "rogue-copy"} {
		if nodes := resultNodes(out, id); len(nodes) > 0 {
			t.Errorf("the signet watcher returned rogue node %s at %s", id, nodes[0].Address)
		}
	}

	var calls atomic.Int64
	poll(t, "a call through signet after the restart", func() bool {
		calls.Add(1)
		_, err := call(c, name)
		return err == nil
	})

	rogueSeen, lookups, errs := mon.result()
	if len(rogueSeen) > 0 {
		t.Errorf("readers were given rogue nodes %q", rogueSeen)
	}
	watch.mu.Lock()
	restarts, watchErrs := watch.restarts, len(watch.errs)
	watch.mu.Unlock()
	t.Logf("consul restart: lookup during the outage failed after %v; watcher errors %d, restarts %d; genuine node back in the watch %v after the restart; calls to recover %d; %d lookups (%d failed), rogue nodes returned %d",
		outage.Round(time.Millisecond), watchErrs, restarts, recovered.Round(time.Millisecond), calls.Load(), lookups, errs, len(rogueSeen))
}
