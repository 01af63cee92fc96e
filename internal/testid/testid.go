// Package testid creates issuers, node identities and signet-wrapped
// registries for tests. It is imported only by tests and examples.
package testid

import (
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// Clock is a settable clock for tests of expiry, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Issuer is a test issuer with its trust bundle.
type Issuer struct {
	*signing.Issuer
	Bundle *verify.Bundle
}

// NewIssuer returns an issuer with a fresh Ed25519 key.
func NewIssuer(t testing.TB, now func() time.Time) *Issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := verify.NewBundle(verify.IssuerKey{ID: "test-issuer", Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Issuer: &signing.Issuer{Key: priv, KeyID: "test-issuer", Name: "test", Now: now}, Bundle: bundle}
}

// Node returns credentials for a fresh node key whose token allows
// services (and topics) for lifetime.
func (is *Issuer) Node(t testing.TB, subject string, services, topics []string, lifetime time.Duration) *signing.Credentials {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token, err := is.Issue(signing.Identity{
		Subject:  subject,
		NodeKey:  key.Public().(ed25519.PublicKey),
		Services: services,
		Topics:   topics,
		Lifetime: lifetime,
	})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := signing.NewCredentials(key, token)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// Verifier returns a verifier trusting the issuer, reading now.
func (is *Issuer) Verifier(t testing.TB, now func() time.Time, opts ...verify.Option) *verify.Verifier {
	t.Helper()
	v, err := verify.New(append([]verify.Option{verify.WithBundle(is.Bundle), verify.WithClock(now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Signer returns a signer for creds, reading now.
func Signer(t testing.TB, creds signing.CredentialSource, now func() time.Time, opts ...signing.SignerOption) *signing.Signer {
	t.Helper()
	s, err := signing.NewSigner(creds, append([]signing.SignerOption{signing.WithSignerClock(now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Wrap wraps inner with a verifier trusting the issuer and, when creds is
// not nil, a signer for creds.
func (is *Issuer) Wrap(t testing.TB, inner registry.Registry, creds signing.CredentialSource, now func() time.Time, opts ...signet.Option) *signet.Registry {
	t.Helper()
	all := []signet.Option{signet.WithVerifier(is.Verifier(t, now)), signet.WithClock(now)}
	if creds != nil {
		all = append(all, signet.WithSigner(Signer(t, creds, now)))
	}
	r, err := signet.New(inner, append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Service returns a service like the go-micro rpc server registers.
func Service(name, nodeID, address string) *registry.Service {
	return &registry.Service{
		Name:    name,
		Version: "latest",
		Nodes: []*registry.Node{{
			Id:      nodeID,
			Address: address,
			Metadata: map[string]string{
				"transport": "http", "broker": "http", "server": "mucp", "registry": "signet/memory", "protocol": "mucp",
			},
		}},
		Endpoints: []*registry.Endpoint{{
			Name:     "Greeter.Hello",
			Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "name", Type: "string"}}},
			Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{{Name: "greeting", Type: "string"}}},
			Metadata: map[string]string{"stream": "false"},
		}},
	}
}
