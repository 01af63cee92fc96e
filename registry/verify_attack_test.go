package registry_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-micro/plugins/v4/registry/etcd"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/internal/testserver"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

var start = time.Unix(1_800_000_000, 0)

// env is a signet wrapper around a go-micro memory registry, on one
// settable clock, with an observer and a captured log.
type env struct {
	clock    *testid.Clock
	issuer   *testid.Issuer
	creds    *signing.Credentials
	inner    registry.Registry
	reg      *signet.Registry
	observer *testid.Observer
	logs     *testid.LogBuffer
}

func newEnv(t *testing.T, opts ...signet.Option) *env {
	t.Helper()
	clock := testid.NewClock(start)
	issuer := testid.NewIssuer(t, clock.Now)
	e := &env{
		clock:    clock,
		issuer:   issuer,
		creds:    issuer.Node(t, "greeter", []string{"greeter"}, nil, 2*time.Hour),
		inner:    registry.NewMemoryRegistry(),
		observer: testid.NewObserver(),
		logs:     &testid.LogBuffer{},
	}
	all := append([]signet.Option{signet.WithObserver(e.observer), signet.WithLogger(e.logs.Logger())}, opts...)
	e.reg = issuer.Wrap(t, e.inner, e.creds, clock.Now, all...)
	return e
}

func nodeIDs(services []*registry.Service) []string {
	var ids []string
	for _, s := range services {
		for _, n := range s.Nodes {
			ids = append(ids, n.Id)
		}
	}
	slices.Sort(ids)
	return ids
}

// roundTripServices are valid registrations that must all survive.
func roundTripServices() map[string][]*registry.Service {
	many := testid.Service("greeter", "greeter-many", "10.0.0.3:9000")
	for i := range 50 {
		many.Endpoints = append(many.Endpoints, &registry.Endpoint{
			Name:     fmt.Sprintf("Greeter.Method%02d", i),
			Request:  &registry.Value{Name: "Req", Type: "Req", Values: []*registry.Value{{Name: "f", Type: "string"}}},
			Response: &registry.Value{Name: "Rsp", Type: "Rsp"},
			Metadata: map[string]string{"stream": "false"},
		})
	}

	subscriber := testid.Service("greeter", "greeter-sub", "10.0.0.4:9000")
	// go-micro's subscriber endpoints have no response value, and the
	// memory registry returns an empty one in its place.
	subscriber.Endpoints = append(subscriber.Endpoints, &registry.Endpoint{
		Name:     "Func",
		Request:  &registry.Value{Name: "Event", Type: "Event"},
		Metadata: map[string]string{"topic": "greeter.events", "subscriber": "true"},
	})

	nearLimits := testid.Service("greeter", "greeter-big", "10.0.0.5:9000")
	for i := range 40 {
		nearLimits.Nodes[0].Metadata[fmt.Sprintf("user-%02d", i)] = strings.Repeat(string(rune('a'+i%26)), 512)
	}

	versions := []*registry.Service{
		testid.Service("greeter", "greeter-v1", "10.0.0.6:9000"),
		testid.Service("greeter", "greeter-v2", "10.0.0.7:9000"),
		testid.Service("greeter", "greeter-v3", "10.0.0.8:9000"),
	}
	for i, v := range versions {
		v.Version = fmt.Sprintf("1.%d.0", i)
	}

	twoNodes := testid.Service("greeter", "greeter-a", "10.0.0.9:9000")
	twoNodes.Nodes = append(twoNodes.Nodes, &registry.Node{Id: "greeter-b", Address: "10.0.0.10:9000", Metadata: maps.Clone(twoNodes.Nodes[0].Metadata)})

	return map[string][]*registry.Service{
		"ipv4":          {testid.Service("greeter", "greeter-ipv4", "10.0.0.1:8080")},
		"ipv6":          {testid.Service("greeter", "greeter-ipv6", "[::1]:8080")},
		"ipv6-long":     {testid.Service("greeter", "greeter-ipv6l", "[0:0::1]:8081")},
		"host-name":     {testid.Service("greeter", "greeter-host", "greeter.svc.local:9000")},
		"host-upper":    {testid.Service("greeter", "greeter-HOST", "Greeter.SVC.Local:9000")},
		"no-port":       {testid.Service("greeter", "greeter-noport", "10.0.0.2")},
		"many-eps":      {many},
		"subscriber":    {subscriber},
		"near-limits":   {nearLimits},
		"versions":      versions,
		"two-nodes":     {twoNodes},
		"service-md":    {withServiceMetadata(testid.Service("greeter", "greeter-md", "10.0.0.11:9000"))},
		"no-endpoints":  {withoutEndpoints(testid.Service("greeter", "greeter-noeps", "10.0.0.12:9000"))},
		"empty-version": {withVersion(testid.Service("greeter", "greeter-nov", "10.0.0.13:9000"), "")},
	}
}

func withServiceMetadata(s *registry.Service) *registry.Service {
	s.Metadata = map[string]string{"owner": "team-a", "tier": "1"}
	return s
}

func withoutEndpoints(s *registry.Service) *registry.Service { s.Endpoints = nil; return s }

func withVersion(s *registry.Service, v string) *registry.Service { s.Version = v; return s }

func TestRoundTripGetService(t *testing.T) {
	for name, services := range roundTripServices() {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			var want []string
			for _, svc := range services {
				before := testid.CloneService(svc)
				if err := e.reg.Register(svc); err != nil {
					t.Fatalf("Register: %v", err)
				}
				if err := e.reg.Register(svc); err != nil {
					t.Fatalf("second Register: %v", err)
				}
				want = append(want, nodeIDs([]*registry.Service{svc})...)
				if !reflect.DeepEqual(before, svc) {
					t.Fatal("Register modified the caller's service")
				}
			}
			slices.Sort(want)

			got, err := e.reg.GetService("greeter")
			if err != nil {
				t.Fatalf("GetService: %v", err)
			}
			if ids := nodeIDs(got); !slices.Equal(ids, want) {
				t.Fatalf("GetService nodes = %v, want %v (genuine nodes dropped)", ids, want)
			}
			if n := e.observer.Rejections("unsigned") + e.observer.Rejections("bad-signature") + e.observer.Rejections("malformed"); n != 0 {
				t.Fatalf("%d genuine nodes rejected; log:\n%s", n, e.logs)
			}
			checkServiceFields(t, services, got)
		})
	}
}

// checkServiceFields fails unless each version came back with the
// endpoints and metadata it registered.
func checkServiceFields(t *testing.T, registered, got []*registry.Service) {
	t.Helper()
	for _, want := range registered {
		var match *registry.Service
		for _, g := range got {
			if g.Version == want.Version {
				match = g
			}
		}
		if match == nil {
			t.Fatalf("version %q missing", want.Version)
		}
		if record.DigestEndpoints(match.Endpoints) != record.DigestEndpoints(want.Endpoints) {
			t.Errorf("version %q: %d endpoints came back, %d registered; the wrapper dropped genuine endpoints", want.Version, len(match.Endpoints), len(want.Endpoints))
		}
		if !maps.Equal(match.Metadata, want.Metadata) && (len(match.Metadata) != 0 || len(want.Metadata) != 0) {
			t.Errorf("version %q: metadata %v, want %v", want.Version, match.Metadata, want.Metadata)
		}
		for _, n := range match.Nodes {
			for _, wn := range want.Nodes {
				if wn.Id == n.Id && wn.Address != n.Address {
					t.Errorf("node %s address %q, want %q", n.Id, n.Address, wn.Address)
				}
			}
		}
	}
}

func TestRoundTripWatch(t *testing.T) {
	for name, services := range roundTripServices() {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			results := watch(t, e.reg, registry.WatchService("greeter"))

			want := map[string]bool{}
			for _, svc := range services {
				if err := e.reg.Register(svc); err != nil {
					t.Fatalf("Register: %v", err)
				}
				for _, n := range svc.Nodes {
					want[n.Id] = true
				}
			}

			seen := map[string]bool{}
			deadline := time.After(5 * time.Second)
			for len(seen) < len(want) {
				select {
				case res := <-results:
					if res.Action == "delete" {
						continue
					}
					for _, n := range res.Service.Nodes {
						if !want[n.Id] {
							t.Fatalf("watch returned unknown node %s", n.Id)
						}
						seen[n.Id] = true
					}
					for _, svc := range services {
						if svc.Version == res.Service.Version && record.DigestEndpoints(res.Service.Endpoints) != record.DigestEndpoints(svc.Endpoints) {
							t.Errorf("watch result for version %q lost its endpoints", svc.Version)
						}
					}
				case <-deadline:
					t.Fatalf("watch returned nodes %v of %v within 5 s; log:\n%s", seen, want, e.logs)
				}
			}
		})
	}
}

// watch starts a watcher on reg and returns its results on a channel. The
// watcher is stopped at the end of the test.
func watch(t *testing.T, reg registry.Registry, opts ...registry.WatchOption) <-chan *registry.Result {
	t.Helper()
	w, err := reg.Watch(opts...)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	out := make(chan *registry.Result, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			out <- res
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		<-done
	})
	return out
}

func TestConsulAddressRewrites(t *testing.T) {
	// Consul rebuilds Node.Address from the service address and port; a
	// node must still verify after each rewrite.
	e := newEnv(t)
	for _, tc := range []struct{ registered, returned string }{
		{"10.0.0.1", "10.0.0.1:0"},
		{"[0:0::1]:80", "[::1]:80"},
		{"[::1]:80", "[0:0::1]:80"},
		{"Greeter.Local:80", "greeter.local:80"},
		{"greeter.local:80", "GREETER.LOCAL:80"},
		{"10.0.0.1:080", "10.0.0.1:80"},
	} {
		svc := testid.Service("greeter", "n-"+tc.registered, tc.registered)
		signed, _, err := e.reg.Signer().Sign(svc)
		if err != nil {
			t.Fatal(err)
		}
		node := testid.CloneNode(signed.Nodes[0])
		node.Address = tc.returned
		if _, err := e.reg.Verifier().VerifyNode(svc.Name, svc.Version, node); err != nil {
			t.Errorf("registered %q, returned %q: %v", tc.registered, tc.returned, err)
		}
	}
}

func TestRogueFirstRecordMemory(t *testing.T) {
	// The memory registry keeps the endpoints and metadata of the first
	// registration of a version, as Consul and etcd take them from the
	// first record they read. A rogue record registered first must not
	// lend them to the genuine nodes.
	e := newEnv(t)
	rogue := testid.Service("greeter", "rogue-1", "10.6.6.6:9000")
	rogue.Endpoints = []*registry.Endpoint{{Name: "Greeter.Exfiltrate", Request: &registry.Value{Name: "Secrets"}}}
	rogue.Metadata = map[string]string{"auth": "none"}
	if err := e.inner.Register(rogue); err != nil {
		t.Fatal(err)
	}
	genuine := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	if err := e.reg.Register(genuine); err != nil {
		t.Fatal(err)
	}

	got, err := e.reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(got); !slices.Equal(ids, []string{"greeter-1"}) {
		t.Fatalf("nodes = %v, want [greeter-1]", ids)
	}
	if len(got[0].Endpoints) != 0 || len(got[0].Metadata) != 0 {
		t.Fatalf("rogue endpoints %v or metadata %v passed on", got[0].Endpoints, got[0].Metadata)
	}
	if !strings.Contains(e.logs.String(), "do not match any verified node") {
		t.Errorf("the emptied fields were not logged:\n%s", e.logs)
	}
}

func TestRogueFieldsEtcd(t *testing.T) {
	server := testserver.StartEtcd(t, testserver.EtcdOptions{})
	cases := []struct {
		name      string
		rogueID   string // etcd returns nodes sorted by id
		rogueEps  bool   // rogue endpoints differ from the genuine ones
		wantEps   bool
		wantNodes []string
	}{
		{"rogue-first-different", "a-rogue", true, false, []string{"greeter-1"}},
		{"rogue-first-same", "a-rogue", false, true, []string{"greeter-1"}},
		{"genuine-first", "z-rogue", true, true, []string{"greeter-1"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("greeter%d", i)
			// The plugin takes host:port addresses; a URL would make it fall
			// back to its default address.
			addr := strings.TrimPrefix(server.Endpoints[0], "http://")
			inner := etcd.NewRegistry(registry.Addrs(addr), registry.Timeout(5*time.Second))
			clock := testid.NewClock(time.Now())
			issuer := testid.NewIssuer(t, clock.Now)
			creds := issuer.Node(t, "greeter", []string{name}, nil, time.Hour)
			logs := &testid.LogBuffer{}
			reg := issuer.Wrap(t, inner, creds, clock.Now, signet.WithLogger(logs.Logger()))

			genuine := testid.Service(name, "greeter-1", "127.0.0.1:9000")
			rogue := testid.Service(name, tc.rogueID, "127.0.0.1:6666")
			if tc.rogueEps {
				rogue.Endpoints = []*registry.Endpoint{{Name: "Greeter.Exfiltrate"}}
			}
			rogue.Metadata = map[string]string{"auth": "none"}
			// The etcd plugin v1.2.0 dereferences a nil lease when Register
			// has no TTL; go-micro's server always passes one.
			ttl := registry.RegisterTTL(time.Minute)
			if err := inner.Register(rogue, ttl); err != nil {
				t.Fatalf("register rogue in etcd: %v", err)
			}
			if err := reg.Register(genuine, ttl); err != nil {
				t.Fatalf("Register: %v", err)
			}
			t.Cleanup(func() { _ = inner.Deregister(rogue); _ = reg.Deregister(genuine) })

			raw, err := inner.GetService(name)
			if err != nil || len(raw) != 1 || len(raw[0].Nodes) != 2 {
				t.Fatalf("etcd GetService = %v, %v; want one version with two nodes", raw, err)
			}
			got, err := reg.GetService(name)
			if err != nil {
				t.Fatalf("GetService: %v", err)
			}
			if ids := nodeIDs(got); !slices.Equal(ids, tc.wantNodes) {
				t.Fatalf("nodes = %v, want %v", ids, tc.wantNodes)
			}
			hasEps := record.DigestEndpoints(got[0].Endpoints) == record.DigestEndpoints(genuine.Endpoints) && len(got[0].Endpoints) > 0
			if hasEps != tc.wantEps {
				t.Fatalf("endpoints = %v; want genuine endpoints: %v", got[0].Endpoints, tc.wantEps)
			}
			if len(got[0].Endpoints) > 0 && got[0].Endpoints[0].Name == "Greeter.Exfiltrate" {
				t.Fatal("rogue endpoints passed on")
			}
			if got[0].Metadata["auth"] == "none" {
				t.Fatal("rogue service metadata passed on")
			}
		})
	}
}

func TestRegisterRejectsThroughWrapper(t *testing.T) {
	e := newEnv(t)
	svc := testid.Service("billing", "billing-1", "10.0.0.1:9000")
	err := e.reg.Register(svc)
	if !errors.Is(err, signing.ErrNotAllowed) {
		t.Fatalf("Register(billing) err = %v, want ErrNotAllowed", err)
	}
	if _, err := e.inner.GetService("billing"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a rejected registration reached the inner registry: %v", err)
	}

	discovery := e.issuer.Wrap(t, e.inner, nil, e.clock.Now)
	if err := discovery.Register(testid.Service("greeter", "g", "10.0.0.1:1")); !errors.Is(err, signet.ErrNoSigner) {
		t.Fatalf("Register without a signer err = %v, want ErrNoSigner", err)
	}
}

func TestRogueReplayAfterExpiry(t *testing.T) {
	// A genuine record copied back into the registry after its node left
	// is dropped once the record expires.
	e := newEnv(t)
	svc := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	signed, _, err := e.reg.Signer().Sign(svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.inner.Register(signed); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.GetService("greeter"); err != nil {
		t.Fatalf("GetService of the fresh record: %v", err)
	}
	e.clock.Advance(signing.DefaultRecordTTL + verify.DefaultLeeway)
	if _, err := e.reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("replayed expired record: err = %v, want ErrNotFound", err)
	}
	if e.observer.Rejections("record-expired") == 0 {
		t.Error("the expired record was not counted")
	}
}
