package verify_test

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/verify"
)

// reasonCases produce each rejection reason through VerifyNode. The key
// is the reason code that verify.Reason returns.
var reasonCases = map[string]struct {
	sentinel error
	produce  func(t *testing.T, f *fixture) error
}{
	"unsigned": {verify.ErrUnsigned, func(t *testing.T, f *fixture) error {
		return verifyFirst(f, service())
	}},
	"malformed": {verify.ErrMalformed, func(t *testing.T, f *fixture) error {
		svc := f.sign(t, service())
		svc.Nodes[0].Metadata[record.KeyIssuedAt] = "0123"
		return verifyFirst(f, svc)
	}},
	"bad-signature": {verify.ErrBadSignature, func(t *testing.T, f *fixture) error {
		svc := f.sign(t, service())
		svc.Nodes[0].Address = "10.6.6.6:9000"
		return verifyFirst(f, svc)
	}},
	"record-expired": {verify.ErrRecordExpired, func(t *testing.T, f *fixture) error {
		svc := f.sign(t, service())
		f.clock.Advance(11 * time.Minute)
		return verifyFirst(f, svc)
	}},
	"record-not-yet-valid": {verify.ErrRecordNotYetValid, func(t *testing.T, f *fixture) error {
		svc := service()
		forged := f.forged(10 * time.Minute)
		forged.IssuedAt = forged.IssuedAt.Add(verify.DefaultLeeway + time.Second)
		svc.Nodes[0] = testid.ForgeNode(t, forged, svc, svc.Nodes[0])
		return verifyFirst(f, svc)
	}},
	"record-outlives-token": {verify.ErrRecordOutlivesToken, func(t *testing.T, f *fixture) error {
		svc := service()
		svc.Nodes[0] = testid.ForgeNode(t, f.forged(time.Hour+time.Second), svc, svc.Nodes[0])
		return verifyFirst(f, svc)
	}},
	"record-lifetime-too-long": {verify.ErrRecordLifetime, func(t *testing.T, f *fixture) error {
		svc := service()
		svc.Nodes[0] = testid.ForgeNode(t, f.forged(40*time.Minute), svc, svc.Nodes[0])
		strict := f.issuer.Verifier(t, f.clock.Now, verify.WithMaxRecordLifetime(30*time.Minute))
		_, err := strict.VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
		return err
	}},
	"token-malformed": {verify.ErrTokenMalformed, func(t *testing.T, f *fixture) error {
		return verifyWithClaims(t, f, func(h, c map[string]any) { delete(c, "jti") })
	}},
	"token-bad-signature": {verify.ErrTokenSignature, func(t *testing.T, f *fixture) error {
		svc := service()
		claims := f.issuer.Claims(t, f.creds.Key.Public().(ed25519.PublicKey), []string{"greeter"}, time.Hour)
		other := testid.NewNodeKey(t)
		token := testid.RawToken(t, f.issuer.Header(), claims, func(b []byte) []byte { return ed25519.Sign(other, b) })
		now := f.clock.Now()
		svc.Nodes[0] = testid.ForgeNode(t, testid.Forged{Key: f.creds.Key, Token: token, IssuedAt: now, Expiry: now.Add(time.Minute)}, svc, svc.Nodes[0])
		return verifyFirst(f, svc)
	}},
	"algorithm-not-allowed": {verify.ErrAlgorithmNotAllowed, func(t *testing.T, f *fixture) error {
		return verifyWithClaims(t, f, func(h, c map[string]any) { h["alg"] = "none" })
	}},
	"unknown-issuer-key": {verify.ErrUnknownKeyID, func(t *testing.T, f *fixture) error {
		return verifyWithClaims(t, f, func(h, c map[string]any) { h["kid"] = "elsewhere" })
	}},
	"token-expired": {verify.ErrTokenExpired, func(t *testing.T, f *fixture) error {
		svc := f.sign(t, service())
		f.clock.Advance(2 * time.Hour)
		return verifyFirst(f, svc)
	}},
	"token-not-yet-valid": {verify.ErrTokenNotYetValid, func(t *testing.T, f *fixture) error {
		return verifyWithClaims(t, f, func(h, c map[string]any) { c["nbf"] = f.clock.Now().Add(time.Minute).Unix() })
	}},
	"wrong-audience": {verify.ErrAudience, func(t *testing.T, f *fixture) error {
		return verifyWithClaims(t, f, func(h, c map[string]any) { c["aud"] = []string{"other"} })
	}},
	"wrong-issuer": {verify.ErrIssuer, func(t *testing.T, f *fixture) error {
		f.verifier = f.newVerifier(t, verify.WithIssuer("the-real-issuer"))
		return verifyFirst(f, f.sign(t, service()))
	}},
	"no-cnf-key": {verify.ErrConfirmation, func(t *testing.T, f *fixture) error {
		return verifyWithClaims(t, f, func(h, c map[string]any) { delete(c, "cnf") })
	}},
	"not-allowed": {verify.ErrNotAllowed, func(t *testing.T, f *fixture) error {
		svc := f.sign(t, service())
		svc.Name = "payments"
		return verifyFirst(f, svc)
	}},
	"revoked": {verify.ErrRevoked, func(t *testing.T, f *fixture) error {
		f.verifier = f.newVerifier(t, verify.WithRevocations(verify.NewRevocations(nil, []string{"test-issuer"})))
		return verifyFirst(f, f.sign(t, service()))
	}},
	"no-trust-bundle": {verify.ErrNoTrustBundle, func(t *testing.T, f *fixture) error {
		f.verifier = f.newVerifier(t, verify.WithBundle(&switchableBundle{err: errors.New("bundle file unreadable")}))
		return verifyFirst(f, f.sign(t, service()))
	}},
}

func verifyFirst(f *fixture, svc *registry.Service) error {
	_, err := f.verifier.VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
	return err
}

// verifyWithClaims verifies a node whose token the issuer signed after
// edit changed its header and claims.
func verifyWithClaims(t *testing.T, f *fixture, edit func(h, c map[string]any)) error {
	h := f.issuer.Header()
	c := f.issuer.Claims(t, f.creds.Key.Public().(ed25519.PublicKey), []string{"greeter"}, time.Hour)
	edit(h, c)
	token := f.issuer.SignRaw(t, h, c)

	svc := service()
	now := f.clock.Now()
	svc.Nodes[0] = testid.ForgeNode(t, testid.Forged{Key: f.creds.Key, Token: token, IssuedAt: now, Expiry: now.Add(time.Minute)}, svc, svc.Nodes[0])
	return verifyFirst(f, svc)
}

func TestReasonsAllProduced(t *testing.T) {
	codes := verify.Reasons()
	if len(codes) != len(sentinels) {
		t.Fatalf("verify.Reasons() has %d codes and this test knows %d sentinels; add the new reason to both lists", len(codes), len(sentinels))
	}
	for _, code := range codes {
		if _, ok := reasonCases[code]; !ok {
			t.Errorf("reason %q has no case that produces it", code)
		}
	}

	for code, tc := range reasonCases {
		t.Run(code, func(t *testing.T) {
			if !slices.Contains(codes, code) {
				t.Fatalf("reason %q is not in verify.Reasons()", code)
			}
			err := tc.produce(t, newFixture(t))
			wantReason(t, err, tc.sentinel)
			if got := verify.Reason(err); got != code {
				t.Fatalf("Reason(%v) = %q, want %q", err, got, code)
			}
		})
	}
}

func TestReasonCodes(t *testing.T) {
	seen := map[string]bool{}
	for _, code := range verify.Reasons() {
		if seen[code] {
			t.Errorf("reason code %q appears twice", code)
		}
		seen[code] = true
	}
	for i, s := range sentinels {
		for j, other := range sentinels {
			if i != j && errors.Is(s, other) {
				t.Errorf("sentinel %q wraps %q; each reason must be distinct", s, other)
			}
		}
	}
	if got := verify.Reason(errors.New("disk full")); got != "error" {
		t.Errorf("Reason(other error) = %q, want \"error\"", got)
	}
	if got := verify.Reason(nil); got != "error" {
		t.Errorf("Reason(nil) = %q, want \"error\"", got)
	}
}

func TestRecordExpiryNotAfterIssue(t *testing.T) {
	f := newFixture(t)
	for name, ttl := range map[string]time.Duration{"equal": 0, "before": -time.Minute} {
		t.Run(name, func(t *testing.T) {
			svc := service()
			node := testid.ForgeNode(t, f.forged(ttl), svc, svc.Nodes[0])
			_, err := f.verifier.VerifyNode(svc.Name, svc.Version, node)
			wantReason(t, err, verify.ErrMalformed)
		})
	}
}

func TestRecordNotYetValidWithinLeeway(t *testing.T) {
	f := newFixture(t)
	svc := service()
	forged := f.forged(10 * time.Minute)
	forged.IssuedAt = forged.IssuedAt.Add(verify.DefaultLeeway - time.Second)
	node := testid.ForgeNode(t, forged, svc, svc.Nodes[0])
	if _, err := f.verifier.VerifyNode(svc.Name, svc.Version, node); err != nil {
		t.Fatalf("record issued within the leeway rejected: %v", err)
	}
}

func TestRevocationSourceFailureRejects(t *testing.T) {
	// A revocation list that cannot be loaded must not let revoked
	// identities through: every node is rejected until it loads.
	f := newFixture(t)
	src := &switchableRevocations{err: errors.New("revocation file unreadable")}
	v := f.newVerifier(t, verify.WithRevocations(src))
	svc := f.sign(t, service())

	_, err := v.VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
	wantReason(t, err, verify.ErrRevoked)

	src.mu.Lock()
	src.err = nil
	src.list = verify.NewRevocations(nil, nil)
	src.mu.Unlock()
	if _, err := v.VerifyNode(svc.Name, svc.Version, svc.Nodes[0]); err != nil {
		t.Fatalf("node rejected after the list loaded: %v", err)
	}
}

func TestNilBundleRejects(t *testing.T) {
	f := newFixture(t)
	v := f.newVerifier(t, verify.WithBundle(&switchableBundle{}))
	svc := f.sign(t, service())
	_, err := v.VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
	wantReason(t, err, verify.ErrNoTrustBundle)
	if _, err := v.VerifyToken(f.creds.Token); !errors.Is(err, verify.ErrNoTrustBundle) {
		t.Fatalf("VerifyToken err = %v, want ErrNoTrustBundle", err)
	}
}

func TestNewOptionErrors(t *testing.T) {
	f := newFixture(t)
	b := verify.WithBundle(f.issuer.Bundle)
	cases := map[string][]verify.Option{
		"no-bundle":       {},
		"empty-audience":  {b, verify.WithAudience()},
		"negative-leeway": {b, verify.WithLeeway(-time.Second)},
		"huge-leeway":     {b, verify.WithLeeway(verify.MaxLeeway + time.Second)},
		"negative-cache":  {b, verify.WithCacheSize(-1)},
		"nil-clock":       {b, verify.WithClock(nil)},
		"hmac":            {b, verify.WithAlgorithms("HS256")},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := verify.New(opts...); err == nil {
				t.Fatal("verify.New accepted the options")
			}
		})
	}
	if _, err := verify.New(); !errors.Is(err, verify.ErrNoTrustBundle) {
		t.Errorf("verify.New() err = %v, want ErrNoTrustBundle", err)
	}
}
