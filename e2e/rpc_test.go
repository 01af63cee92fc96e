package e2e

import (
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
)

// rpcCalls is the number of calls per client, half before the rogue node
// that arrives in a watch result and half after it.
const rpcCalls = 50

// rpcSetup is what the rpc tests share on one backend: a genuine greeter
// registered through signet, two rogue greeter servers that register
// nowhere, and an attacker's plain registry.
type rpcSetup struct {
	backend  backend
	issuer   *testid.Issuer
	attacker registry.Registry

	genuine    *greeterServer
	genuineSvc *registry.Service

	// rogueBefore serves the node injected before the client's first
	// lookup, rogueAfter the one injected after it.
	rogueBefore *greeterServer
	rogueAfter  *greeterServer

	// billing is a stolen identity that may serve billing only.
	billing *signing.Credentials
}

func newRPCSetup(t *testing.T, b backend) *rpcSetup {
	t.Helper()
	is := testid.NewIssuer(t, time.Now)
	greeter := is.Node(t, "greeter", []string{serviceName}, nil, time.Hour)

	s := &rpcSetup{
		backend:     b,
		issuer:      is,
		attacker:    b.connect(t),
		genuine:     startGreeter(t, is.Wrap(t, b.connect(t), greeter, time.Now), "genuine"),
		rogueBefore: startGreeter(t, registry.NewMemoryRegistry(), "rogue-before"),
		rogueAfter:  startGreeter(t, registry.NewMemoryRegistry(), "rogue-after"),
		billing:     is.Node(t, "billing", []string{"billing"}, nil, time.Hour),
	}
	s.genuineSvc = waitForNode(t, s.attacker, serviceName, s.genuine.nodeID)
	return s
}

// unsignedRogue returns a greeter node for the rogueBefore server that
// looks like the genuine one but carries no signature.
func (s *rpcSetup) unsignedRogue(id string) *registry.Service {
	node := &registry.Node{Id: id, Address: s.rogueBefore.address(), Metadata: plainMetadata(s.genuineSvc.Nodes[0].Metadata)}
	return &registry.Service{Name: s.genuineSvc.Name, Version: s.genuineSvc.Version, Endpoints: s.genuineSvc.Endpoints, Nodes: []*registry.Node{node}}
}

// forgedRogue returns a greeter node for the rogueAfter server signed with
// the stolen billing identity, which signing.Signer rejects.
func (s *rpcSetup) forgedRogue(t *testing.T, id string) *registry.Service {
	t.Helper()
	node := &registry.Node{Id: id, Address: s.rogueAfter.address(), Metadata: plainMetadata(s.genuineSvc.Nodes[0].Metadata)}
	svc := &registry.Service{Name: s.genuineSvc.Name, Version: s.genuineSvc.Version, Endpoints: s.genuineSvc.Endpoints, Nodes: []*registry.Node{node}}
	now := time.Now()
	forged := testid.ForgeNode(t, testid.Forged{Key: s.billing.Key, Token: s.billing.Token, IssuedAt: now, Expiry: now.Add(10 * time.Minute)}, svc, node)
	svc.Nodes = []*registry.Node{forged}
	return svc
}

// callCounts returns the calls the genuine and the two rogue servers have
// served so far.
func (s *rpcSetup) callCounts() (genuine, before, after int64) {
	return s.genuine.handler.calls.Load(), s.rogueBefore.handler.calls.Load(), s.rogueAfter.handler.calls.Load()
}

func TestRPCRogueNodes(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := newRPCSetup(t, b.start(t))
			t.Run("signet", func(t *testing.T) { testRPCSignet(t, s) })
			t.Run("plain", func(t *testing.T) { testRPCPlain(t, s) })
		})
	}
}

func testRPCSignet(t *testing.T, s *rpcSetup) {
	obs := testid.NewObserver()
	logs := &testid.LogBuffer{}
	watch := newWatchSignal(s.backend.connect(t))
	reg := s.issuer.Wrap(t, watch, nil, time.Now, signet.WithObserver(obs), signet.WithLogger(logs.Logger()))
	c := newGreeterClient(t, reg)
	genuine0, before0, after0 := s.callCounts()

	before := s.unsignedRogue("greeter-rogue-before-signet")
	inject(t, s.attacker, before)
	c.call(t, rpcCalls/2)
	if got := obs.Results("lookup"); got != 1 {
		t.Fatalf("signet verified %d lookup results after the first calls, want 1", got)
	}

	watch.wait(t)
	after := s.forgedRogue(t, "greeter-rogue-after-signet")
	// Either signet rejected the node in a watch result, or the node got
	// into the selector, which the counts below then report.
	injectUntil(t, s.attacker, after, func() bool {
		return obs.Rejections("not-allowed") > 0 || c.selects(t, after.Nodes[0].Id)
	})
	c.call(t, rpcCalls-rpcCalls/2)

	genuine1, before1, after1 := s.callCounts()
	if got := before1 - before0; got != 0 {
		t.Errorf("rogue server of the node injected before the first lookup served %d calls, want 0", got)
	}
	if got := after1 - after0; got != 0 {
		t.Errorf("rogue server of the node injected after the first lookup served %d calls, want 0", got)
	}
	if got := genuine1 - genuine0; got != rpcCalls {
		t.Errorf("genuine server served %d calls, want %d", got, rpcCalls)
	}

	// One lookup in all, so the forged node's rejection came from a watch
	// result.
	if got := obs.Results("lookup"); got != 1 {
		t.Errorf("signet verified %d lookup results, want 1", got)
	}
	if got := obs.Results("watch"); got < 1 {
		t.Errorf("signet verified %d watch results, want at least 1", got)
	}
	if got := obs.Rejections("unsigned"); got < 1 {
		t.Errorf("signet rejected %d unsigned nodes, want at least 1", got)
	}
	if c.selects(t, before.Nodes[0].Id) {
		t.Errorf("the signet client's selector contains the unsigned node %s", before.Nodes[0].Id)
	}
	if c.selects(t, after.Nodes[0].Id) {
		t.Errorf("the signet client's selector contains the forged node %s", after.Nodes[0].Id)
	}
	if !c.selects(t, s.genuine.nodeID) {
		t.Errorf("the signet client's selector does not contain the genuine node %s", s.genuine.nodeID)
	}

	log := logs.String()
	if !strings.Contains(log, "signet: node rejected") {
		t.Errorf("signet logged no rejection; log:\n%s", log)
	}
	tokenSignature := s.billing.Token[strings.LastIndex(s.billing.Token, ".")+1:]
	if strings.Contains(log, tokenSignature) {
		t.Errorf("signet's log contains the forged node's identity token")
	}
}

// testRPCPlain runs the same attack through the plain registry and checks
// that it works, so that testRPCSignet's zero counts mean something. With
// the genuine and one rogue node, the chance that 25 random picks miss the
// rogue is 2^-25; with three nodes, the chance that 25 miss the second
// rogue is (2/3)^25, about 4e-5.
func testRPCPlain(t *testing.T, s *rpcSetup) {
	watch := newWatchSignal(s.backend.connect(t))
	c := newGreeterClient(t, watch)
	genuine0, before0, after0 := s.callCounts()

	before := s.unsignedRogue("greeter-rogue-before-plain")
	inject(t, s.attacker, before)
	c.call(t, rpcCalls/2)
	_, beforeFirstHalf, _ := s.callCounts()

	watch.wait(t)
	after := s.forgedRogue(t, "greeter-rogue-after-plain")
	injectUntil(t, s.attacker, after, func() bool { return c.selects(t, after.Nodes[0].Id) })
	c.call(t, rpcCalls-rpcCalls/2)

	genuine1, before1, after1 := s.callCounts()
	if got := beforeFirstHalf - before0; got == 0 {
		t.Errorf("through the plain registry, the rogue node injected before the first lookup served 0 of %d calls; the attack did not work", rpcCalls/2)
	}
	if got := after1 - after0; got == 0 {
		t.Errorf("through the plain registry, the rogue node injected after the first lookup served 0 of %d calls; the watch path was not poisoned", rpcCalls-rpcCalls/2)
	}
	if got := (genuine1 - genuine0) + (before1 - before0) + (after1 - after0); got != rpcCalls {
		t.Errorf("the three servers served %d calls, want %d", got, rpcCalls)
	}
}
