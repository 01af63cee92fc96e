package signing_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

var start = time.Unix(1_800_000_000, 0)

type fixture struct {
	clock  *testid.Clock
	issuer *testid.Issuer
	creds  *signing.Credentials
	signer *signing.Signer
}

func newFixture(t *testing.T, opts ...signing.SignerOption) *fixture {
	t.Helper()
	clock := testid.NewClock(start)
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	return &fixture{clock: clock, issuer: issuer, creds: creds, signer: testid.Signer(t, creds, clock.Now, opts...)}
}

func service() *registry.Service {
	svc := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	svc.Metadata = map[string]string{"owner": "team-a"}
	return svc
}

func TestSignStableUntilHalfLife(t *testing.T) {
	f := newFixture(t)
	svc := service()

	first, replaced, err := f.signer.Sign(svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(replaced) != 0 {
		t.Fatalf("first Sign reports replaced nodes %v", replaced)
	}

	// go-micro re-registers every 30 s: each heartbeat before half the
	// record's lifetime returns the same bytes.
	half := signing.DefaultRecordTTL / 2
	for elapsed := 30 * time.Second; elapsed < half; elapsed += 30 * time.Second {
		f.clock.Advance(30 * time.Second)
		again, replaced, err := f.signer.Sign(service())
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(again.Nodes[0].Metadata, first.Nodes[0].Metadata) {
			t.Fatalf("record changed after %v, before half its lifetime", elapsed)
		}
		if len(replaced) != 0 {
			t.Fatalf("Sign after %v reports replaced nodes %v", elapsed, replaced)
		}
	}

	f.clock.Advance(half - (f.clock.Now().Sub(start)))
	renewed, replaced, err := f.signer.Sign(service())
	if err != nil {
		t.Fatal(err)
	}
	if maps.Equal(renewed.Nodes[0].Metadata, first.Nodes[0].Metadata) {
		t.Fatal("record not re-signed at half its lifetime")
	}
	if len(replaced) != 1 || replaced[0] != "greeter-1" {
		t.Fatalf("replaced = %v, want [greeter-1]", replaced)
	}
	if got, want := renewed.Nodes[0].Metadata[record.KeyIssuedAt], fmt.Sprint(start.Add(half).Unix()); got != want {
		t.Errorf("renewed record iat = %s, want %s", got, want)
	}

	// Both the first and the renewed record verify at their times.
	v := f.issuer.Verifier(t, f.clock.Now)
	if _, err := v.VerifyNode(renewed.Name, renewed.Version, renewed.Nodes[0]); err != nil {
		t.Fatalf("renewed record rejected: %v", err)
	}
}

func TestSignChangedNodeResigned(t *testing.T) {
	f := newFixture(t)
	first, _, err := f.signer.Sign(service())
	if err != nil {
		t.Fatal(err)
	}

	for name, edit := range map[string]func(svc *registry.Service){
		"metadata":  func(svc *registry.Service) { svc.Nodes[0].Metadata["extra"] = "1" },
		"address":   func(svc *registry.Service) { svc.Nodes[0].Address = "10.0.0.2:9000" },
		"version":   func(svc *registry.Service) { svc.Version = "2" },
		"endpoints": func(svc *registry.Service) { svc.Endpoints = nil },
		"service-md": func(svc *registry.Service) {
			svc.Metadata = map[string]string{"owner": "team-b"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			svc := service()
			edit(svc)
			got, replaced, err := f.signer.Sign(svc)
			if err != nil {
				t.Fatal(err)
			}
			if got.Nodes[0].Metadata[record.KeySignature] == first.Nodes[0].Metadata[record.KeySignature] {
				t.Fatal("changed node kept its old signature")
			}
			// A new version is a new record of its own, which replaces nothing:
			// backends keep the versions of a service apart.
			wantReplaced := 1
			if name == "version" {
				wantReplaced = 0
			}
			if len(replaced) != wantReplaced {
				t.Fatalf("replaced = %v, want %d node(s)", replaced, wantReplaced)
			}
			if _, err := f.issuer.Verifier(t, f.clock.Now).VerifyNode(got.Name, got.Version, got.Nodes[0]); err != nil {
				t.Fatalf("re-signed node rejected: %v", err)
			}
		})
	}
}

func TestSignForget(t *testing.T) {
	f := newFixture(t)
	first, _, _ := f.signer.Sign(service())
	f.clock.Advance(time.Second)
	f.signer.Forget("greeter", "latest", "greeter-1")
	again, replaced, err := f.signer.Sign(service())
	if err != nil {
		t.Fatal(err)
	}
	if maps.Equal(again.Nodes[0].Metadata, first.Nodes[0].Metadata) || len(replaced) != 0 {
		t.Fatalf("Forget did not drop the record (replaced %v)", replaced)
	}
}

func TestSignNeverMutatesCaller(t *testing.T) {
	f := newFixture(t)
	svc := service()
	svc.Nodes = append(svc.Nodes, &registry.Node{Id: "greeter-2", Address: "[::1]:9001", Metadata: map[string]string{
		"transport": "http",
		// Stale signet keys from an earlier registration are stripped from
		// the signed copy, and stay in the caller's map.
		record.KeySignature: "stale", record.TokenPartKey(5): "stale",
	}})
	before := testid.CloneService(svc)

	for i := range 3 {
		signed, _, err := f.signer.Sign(svc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(svc, before) {
			t.Fatalf("Sign %d modified the caller's service:\n got  %+v\n want %+v", i, svc, before)
		}
		if signed.Nodes[1].Metadata[record.TokenPartKey(5)] != "" {
			t.Fatal("signed copy kept a stale signet key")
		}
		for _, n := range signed.Nodes {
			if _, err := f.issuer.Verifier(t, f.clock.Now).VerifyNode(signed.Name, signed.Version, n); err != nil {
				t.Fatalf("Sign %d: node %s rejected: %v", i, n.Id, err)
			}
		}

		// Changing the signed copy (as a backend or a watcher's consumer
		// may) must reach neither the caller nor the signer's cache.
		signed.Nodes[0].Metadata["mutated"] = "yes"
		if _, ok := svc.Nodes[0].Metadata["mutated"]; ok {
			t.Fatal("the signed copy shares the caller's metadata map")
		}
		f.clock.Advance(time.Minute)
	}
}

func TestSignRejects(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("v", 513)

	cases := []struct {
		name     string
		edit     func(svc *registry.Service)
		sentinel error
		mention  []string
	}{
		{"service-not-allowed", func(s *registry.Service) { s.Name = "billing" }, signing.ErrNotAllowed, []string{`"billing"`, `"greeter"`}},
		{"key-with-dot", func(s *registry.Service) { s.Nodes[0].Metadata["app.version"] = "1" }, signing.ErrInvalidService, []string{`"app.version"`, `'.'`}},
		{"key-consul-prefix", func(s *registry.Service) { s.Nodes[0].Metadata["consul-x"] = "1" }, signing.ErrInvalidService, []string{`"consul-x"`, "consul-"}},
		{"key-space", func(s *registry.Service) { s.Nodes[0].Metadata["a b"] = "1" }, signing.ErrInvalidService, []string{`"a b"`}},
		{"key-empty", func(s *registry.Service) { s.Nodes[0].Metadata[""] = "1" }, signing.ErrInvalidService, []string{"empty"}},
		{"key-too-long", func(s *registry.Service) { s.Nodes[0].Metadata[strings.Repeat("k", 129)] = "1" }, signing.ErrInvalidService, []string{"129", "128"}},
		{"value-too-long", func(s *registry.Service) { s.Nodes[0].Metadata["big"] = long }, signing.ErrInvalidService, []string{`"big"`, "513", "512"}},
		{"too-many-pairs", func(s *registry.Service) {
			for i := range 60 {
				s.Nodes[0].Metadata[fmt.Sprintf("k%02d", i)] = "v"
			}
		}, signing.ErrInvalidService, []string{"64"}},
		{"no-nodes", func(s *registry.Service) { s.Nodes = nil }, signing.ErrInvalidService, []string{"no nodes"}},
		{"nil-node", func(s *registry.Service) { s.Nodes = []*registry.Node{nil} }, signing.ErrInvalidService, []string{"nil"}},
		{"empty-node-id", func(s *registry.Service) { s.Nodes[0].Id = "" }, signing.ErrInvalidService, []string{"node id"}},
		{"duplicate-node", func(s *registry.Service) { s.Nodes = append(s.Nodes, s.Nodes[0]) }, signing.ErrInvalidService, []string{"twice"}},
		{"empty-address", func(s *registry.Service) { s.Nodes[0].Address = "" }, signing.ErrInvalidService, []string{"address"}},
		{"bad-address", func(s *registry.Service) { s.Nodes[0].Address = "10.0.0.1:99999" }, signing.ErrInvalidService, []string{"99999"}},
		{"empty-name", func(s *registry.Service) { s.Name = "" }, signing.ErrInvalidService, []string{"service name"}},
		{"name-space", func(s *registry.Service) { s.Name = "greeter x" }, signing.ErrInvalidService, []string{"white space"}},
		{"name-control", func(s *registry.Service) { s.Name = "greeter\x00" }, signing.ErrInvalidService, []string{"control"}},
		{"version-newline", func(s *registry.Service) { s.Version = "1\n2" }, signing.ErrInvalidService, []string{"version"}},
		{"node-id-long", func(s *registry.Service) { s.Nodes[0].Id = strings.Repeat("n", 257) }, signing.ErrInvalidService, []string{"257"}},
		{"name-not-utf8", func(s *registry.Service) { s.Name = "\xff" }, signing.ErrInvalidService, []string{"UTF-8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := service()
			tc.edit(svc)
			_, _, err := f.signer.Sign(svc)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Sign err = %v; want %v", err, tc.sentinel)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			if strings.Contains(err.Error(), f.creds.Token) || strings.Contains(err.Error(), long) {
				t.Errorf("error contains the token or the whole oversized value")
			}
		})
	}

	if _, _, err := f.signer.Sign(nil); !errors.Is(err, signing.ErrInvalidService) {
		t.Errorf("Sign(nil) err = %v", err)
	}
}

func TestSignMetadataNearLimits(t *testing.T) {
	// 40 user keys of 512 characters plus go-micro's 5 and signet's 9
	// stay within Consul's 64 pairs.
	f := newFixture(t)
	svc := service()
	for i := range 40 {
		svc.Nodes[0].Metadata[fmt.Sprintf("user-%02d", i)] = strings.Repeat(string(rune('a'+i%26)), 512)
	}
	signed, _, err := f.signer.Sign(svc)
	if err != nil {
		t.Fatalf("Sign near the limits: %v", err)
	}
	if n := len(signed.Nodes[0].Metadata); n > 64 {
		t.Fatalf("signed node has %d pairs, more than 64", n)
	}
	if _, err := f.issuer.Verifier(t, f.clock.Now).VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatalf("node near the limits rejected: %v", err)
	}

	// The verifier limits allow more room on backends other than Consul.
	wide := testid.Signer(t, f.creds, f.clock.Now, signing.WithMetadataLimits(signing.VerifierLimits))
	svc.Nodes[0].Metadata["app.version"] = strings.Repeat("x", 2000)
	if _, _, err := wide.Sign(svc); err != nil {
		t.Fatalf("Sign with VerifierLimits: %v", err)
	}
}

func TestSignTokenWindow(t *testing.T) {
	f := newFixture(t)

	// The record never outlives the token: 5 minutes before the token's
	// end, the record ends with it.
	f.clock.Advance(55 * time.Minute)
	signed, _, err := f.signer.Sign(service())
	if err != nil {
		t.Fatal(err)
	}
	tokenExp := f.creds.Claims.ExpiresAt.Unix()
	if got := signed.Nodes[0].Metadata[record.KeyExpiry]; got != fmt.Sprint(tokenExp) {
		t.Errorf("record expiry %s, want the token's %d", got, tokenExp)
	}

	f.clock.Advance(5 * time.Minute)
	_, _, err = f.signer.Sign(service())
	if !errors.Is(err, signing.ErrTokenExpired) {
		t.Fatalf("Sign with an expired token err = %v; want ErrTokenExpired", err)
	}
	if !strings.Contains(err.Error(), "renew") {
		t.Errorf("error %q does not say to renew the token", err)
	}

	// A token that is not valid yet cannot sign either.
	h, c := f.issuer.Header(), f.issuer.Claims(t, f.creds.Key.Public().(ed25519.PublicKey), []string{"greeter"}, 2*time.Hour)
	c["nbf"] = f.clock.Now().Add(time.Hour).Unix()
	early, err := signing.NewCredentials(f.creds.Key, f.issuer.SignRaw(t, h, c))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := testid.Signer(t, early, f.clock.Now).Sign(service()); err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Fatalf("Sign with a future nbf err = %v", err)
	}
}

func TestSignBrokerTopics(t *testing.T) {
	f := newFixture(t)
	creds := f.issuer.Node(t, "events", []string{signing.BrokerService}, []string{"events.*"}, time.Hour)
	s := testid.Signer(t, creds, f.clock.Now)
	broker := func(topic string) *registry.Service {
		return &registry.Service{Name: signing.BrokerService, Nodes: []*registry.Node{
			{Id: "sub-1", Address: "127.0.0.1:4000", Metadata: map[string]string{signing.TopicMetadataKey: topic}},
		}}
	}
	if _, _, err := s.Sign(broker("events.created")); err != nil {
		t.Fatalf("Sign allowed topic: %v", err)
	}
	for _, topic := range []string{"orders", "", "events"} {
		_, _, err := s.Sign(broker(topic))
		if !errors.Is(err, signing.ErrNotAllowed) || !strings.Contains(err.Error(), fmt.Sprintf("%q", topic)) {
			t.Errorf("Sign topic %q err = %v; want ErrNotAllowed naming the topic", topic, err)
		}
	}
}

func TestNewSignerRejects(t *testing.T) {
	f := newFixture(t)
	if _, err := signing.NewSigner(nil); err == nil {
		t.Error("NewSigner(nil) succeeded")
	}
	if _, err := signing.NewSigner(f.creds, signing.WithRecordTTL(30*time.Second)); err == nil {
		t.Error("NewSigner accepted a 30 s TTL, below go-micro's re-registration interval")
	}
	for name, l := range map[string]signing.MetadataLimits{
		"few-pairs":   {MaxPairs: 10, MaxKeyLen: 128, MaxValueLen: 512},
		"many-pairs":  {MaxPairs: 1000, MaxKeyLen: 128, MaxValueLen: 512},
		"short-value": {MaxPairs: 64, MaxKeyLen: 128, MaxValueLen: 100},
		"short-key":   {MaxPairs: 64, MaxKeyLen: 5, MaxValueLen: 512},
	} {
		if _, err := signing.NewSigner(f.creds, signing.WithMetadataLimits(l)); err == nil {
			t.Errorf("%s: NewSigner accepted limits %+v", name, l)
		}
	}
}

func TestSignCredentialSourceError(t *testing.T) {
	src := failingSource{}
	s, err := signing.NewSigner(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Sign(service()); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("Sign err = %v; want a credentials error", err)
	}
}

type failingSource struct{}

func (failingSource) Credentials() (*signing.Credentials, error) {
	return nil, errors.New("key file unreadable")
}

func TestSignConcurrent(t *testing.T) {
	f := newFixture(t)
	v := f.issuer.Verifier(t, f.clock.Now)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				svc := testid.Service("greeter", fmt.Sprintf("greeter-%d", i%4), fmt.Sprintf("10.0.0.%d:9000", i%4+1))
				signed, _, err := f.signer.Sign(svc)
				if err != nil {
					t.Errorf("Sign: %v", err)
					return
				}
				if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
					t.Errorf("goroutine %d round %d: %v", i, j, err)
					return
				}
				if i == 0 {
					f.clock.Advance(20 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
}

func TestSignedRecordVerifiesUnderAllowedPattern(t *testing.T) {
	f := newFixture(t)
	creds := f.issuer.Node(t, "team", []string{"team.*"}, nil, time.Hour)
	s := testid.Signer(t, creds, f.clock.Now)
	svc := service()
	svc.Name = "team.billing"
	signed, _, err := s.Sign(svc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.issuer.Verifier(t, f.clock.Now).VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.issuer.Verifier(t, f.clock.Now).VerifyNode("team", signed.Version, signed.Nodes[0])
	if !errors.Is(err, verify.ErrNotAllowed) {
		t.Fatalf("record under the bare prefix err = %v, want ErrNotAllowed", err)
	}
}

func TestSignRejectsInvalidUTF8(t *testing.T) {
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	signer := testid.Signer(t, creds, clock.Now, signing.WithMetadataLimits(signing.VerifierLimits))

	for name, md := range map[string]map[string]string{
		"value": {"label": "caf\xe9"},
		"key":   {"caf\xe9": "x"},
	} {
		svc := testid.Service("greeter", "greeter-1", "127.0.0.1:9000")
		for k, v := range md {
			svc.Nodes[0].Metadata[k] = v
		}
		_, _, err := signer.Sign(svc)
		if !errors.Is(err, signing.ErrInvalidService) {
			t.Errorf("%s: Sign err = %v, want ErrInvalidService", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("%s: error %q does not say UTF-8", name, err)
		}
	}
}

func TestIssueRejectsOversizedToken(t *testing.T) {
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(t, clock.Now)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	services := make([]string, 200)
	for i := range services {
		services[i] = fmt.Sprintf("service-with-a-long-name-%03d", i)
	}
	_, err = issuer.Issue(signing.Identity{Subject: "wide", NodeKey: pub, Services: services, Lifetime: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "4096 bytes") {
		t.Fatalf("Issue of a 6 KB token: err = %v, want the 4096-byte limit named", err)
	}
}

func TestSignSameNodeTwoVersionsStable(t *testing.T) {
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "broker", []string{"greeter"}, nil, time.Hour)
	signer := testid.Signer(t, creds, clock.Now)

	// go-micro's http broker registers one node id under one version per
	// queue; heartbeats of both must reuse their records.
	first := map[string]string{}
	for round := 0; round < 3; round++ {
		for _, version := range []string{"queue-a", "queue-b"} {
			svc := testid.Service("greeter", "greeter-1", "127.0.0.1:9000")
			svc.Version = version
			signed, replaced, err := signer.Sign(svc)
			if err != nil {
				t.Fatal(err)
			}
			sig := signed.Nodes[0].Metadata["signet-sig"]
			if round == 0 {
				first[version] = sig
				continue
			}
			if sig != first[version] || len(replaced) != 0 {
				t.Fatalf("round %d version %s: record re-signed (replaced %v), want the first record reused", round, version, replaced)
			}
			clock.Advance(30 * time.Second)
		}
	}
}
