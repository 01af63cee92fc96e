package verify_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// start is the fixtures' initial clock reading.
var start = time.Unix(1_800_000_000, 0)

// fixture is one issuer, one node identity allowed "greeter" and
// "greeter-admin", a signer and a verifier, all on one settable clock.
type fixture struct {
	clock    *testid.Clock
	issuer   *testid.Issuer
	creds    *signing.Credentials
	signer   *signing.Signer
	verifier *verify.Verifier
}

func newFixture(t testing.TB, opts ...verify.Option) *fixture {
	t.Helper()
	clock := testid.NewClock(start)
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter", "greeter-admin"}, nil, time.Hour)
	return &fixture{
		clock:    clock,
		issuer:   issuer,
		creds:    creds,
		signer:   testid.Signer(t, creds, clock.Now),
		verifier: issuer.Verifier(t, clock.Now, opts...),
	}
}

// service returns the service the fixture signs: one node with go-micro's
// metadata keys, two endpoints and service metadata.
func service() *registry.Service {
	svc := testid.Service("greeter", "greeter-1", "10.0.0.1:9000")
	svc.Version = "1.2.0"
	svc.Metadata = map[string]string{"owner": "team-a"}
	svc.Endpoints = append(svc.Endpoints, &registry.Endpoint{
		Name:     "Greeter.Stream",
		Request:  &registry.Value{Name: "Request", Type: "Request"},
		Metadata: map[string]string{"stream": "true"},
	})
	return svc
}

// sign returns the signed copy of svc.
func (f *fixture) sign(t testing.TB, svc *registry.Service) *registry.Service {
	t.Helper()
	signed, _, err := f.signer.Sign(svc)
	if err != nil {
		t.Fatalf("Sign(%q): %v", svc.Name, err)
	}
	return signed
}

// newVerifier returns a verifier with an empty cache on the fixture's
// issuer and clock.
func (f *fixture) newVerifier(t testing.TB, opts ...verify.Option) *verify.Verifier {
	t.Helper()
	return f.issuer.Verifier(t, f.clock.Now, opts...)
}

// forged returns what testid.ForgeNode needs to sign with the fixture's
// node key and token, valid from now for ttl.
func (f *fixture) forged(ttl time.Duration) testid.Forged {
	now := f.clock.Now()
	return testid.Forged{Key: f.creds.Key, Token: f.creds.Token, IssuedAt: now, Expiry: now.Add(ttl)}
}

// wantReason fails unless err wraps sentinel, is a *verify.Rejection and
// maps to the sentinel's reason code.
func wantReason(t testing.TB, err, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejection with %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v; want it to wrap %q", err, sentinel)
	}
	var rej *verify.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("err = %T %v; want a *verify.Rejection", err, err)
	}
	for _, other := range sentinels {
		if other != sentinel && errors.Is(err, other) {
			t.Fatalf("err = %v wraps %q as well as %q; a rejection wraps exactly one reason", err, other, sentinel)
		}
	}
}

// wantNoSecret fails when msg contains the token or its signature part.
func wantNoSecret(t testing.TB, msg, token string) {
	t.Helper()
	if strings.Contains(msg, token) {
		t.Fatalf("message contains the whole identity token: %s", msg)
	}
	if i := strings.LastIndexByte(token, '.'); i >= 0 && len(token)-i > 20 && strings.Contains(msg, token[i+1:]) {
		t.Fatalf("message contains the token's signature: %s", msg)
	}
}

// sentinels lists every rejection reason in verify.
var sentinels = []error{
	verify.ErrUnsigned, verify.ErrMalformed, verify.ErrBadSignature, verify.ErrRecordExpired,
	verify.ErrRecordNotYetValid, verify.ErrRecordOutlivesToken, verify.ErrRecordLifetime, verify.ErrTokenMalformed,
	verify.ErrTokenSignature, verify.ErrAlgorithmNotAllowed, verify.ErrUnknownKeyID,
	verify.ErrTokenExpired, verify.ErrTokenNotYetValid, verify.ErrAudience, verify.ErrIssuer,
	verify.ErrConfirmation, verify.ErrNotAllowed, verify.ErrRevoked, verify.ErrNoTrustBundle,
}
