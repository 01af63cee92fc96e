package verify_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// attackKeys are issuer keys besides the fixture's: a second trusted
// Ed25519 key, an untrusted one, an ECDSA P-256 key and an RSA key.
type attackKeys struct {
	second    ed25519.PrivateKey
	untrusted ed25519.PrivateKey
	ec        *ecdsa.PrivateKey
	rsa       *rsa.PrivateKey
	bundle    *verify.Bundle // test-issuer, second, ec-issuer, rsa-issuer (RS256 only)
}

// rsaKey is generated once, because a 2048-bit key takes a while.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newAttackKeys(t *testing.T, f *fixture) *attackKeys {
	t.Helper()
	k := &attackKeys{second: testid.NewNodeKey(t), untrusted: testid.NewNodeKey(t), rsa: rsaKey()}
	var err error
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	testIssuer, _ := f.issuer.Bundle.Key("test-issuer")
	k.bundle, err = verify.NewBundle(
		*testIssuer,
		verify.IssuerKey{ID: "second", Key: k.second.Public()},
		verify.IssuerKey{ID: "ec-issuer", Key: &k.ec.PublicKey},
		verify.IssuerKey{ID: "rsa-issuer", Key: &k.rsa.PublicKey, Algorithm: "RS256"},
	)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signWith(method jwt.SigningMethod, key any) func([]byte) []byte {
	return func(input []byte) []byte {
		sig, err := method.Sign(string(input), key)
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func hs256(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

func hs512(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha512.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

// tokenCase is a hand-built token and the reason it must be rejected
// with (nil when it must be accepted).
type tokenCase struct {
	name string
	// header and claims start as the issuer's; edit changes them and
	// returns the sign function (nil keeps the issuer's Ed25519 key).
	edit func(h, c map[string]any) func([]byte) []byte
	// opts configure the verifier, on top of the attack bundle.
	opts []verify.Option
	want error
	// skipNode leaves out the check through a signed node record, for
	// cases whose token window cannot hold a record.
	skipNode bool
}

func tokenCases(t *testing.T, f *fixture, k *attackKeys) []tokenCase {
	issuerPub := f.issuer.Key.Public().(ed25519.PublicKey)
	issuerPEM, err := signing.MarshalPublicKeyPEM(issuerPub)
	if err != nil {
		t.Fatal(err)
	}
	issuerDER, err := x509.MarshalPKIXPublicKey(issuerPub)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now().Unix()
	attackerJWK, _ := jwk.FromPublicKey(k.untrusted.Public())
	ecJWK, _ := jwk.FromPublicKey(&k.ec.PublicKey)

	set := func(key string, v any) func(h, c map[string]any) func([]byte) []byte {
		return func(h, c map[string]any) func([]byte) []byte { c[key] = v; return nil }
	}
	del := func(key string) func(h, c map[string]any) func([]byte) []byte {
		return func(h, c map[string]any) func([]byte) []byte { delete(c, key); return nil }
	}
	header := func(key string, v any, sign func([]byte) []byte) func(h, c map[string]any) func([]byte) []byte {
		return func(h, c map[string]any) func([]byte) []byte {
			if v == nil {
				delete(h, key)
			} else {
				h[key] = v
			}
			return sign
		}
	}
	noSignature := func([]byte) []byte { return nil }
	es256 := signWith(jwt.SigningMethodES256, k.ec)
	both := []verify.Option{verify.WithAlgorithms("EdDSA", "ES256", "ES384", "RS256", "PS256")}

	return []tokenCase{
		{name: "genuine", edit: func(h, c map[string]any) func([]byte) []byte { return nil }},

		{name: "alg/none", edit: header("alg", "none", noSignature), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/None", edit: header("alg", "None", noSignature), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/NONE", edit: header("alg", "NONE", noSignature), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/none-with-signature", edit: header("alg", "none", nil), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/none-all-allowed", edit: header("alg", "none", noSignature), opts: both, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/missing", edit: header("alg", nil, nil), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/unknown", edit: header("alg", "Ed448", nil), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/lower-case", edit: header("alg", "eddsa", nil), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/HS256-public-key-bytes", edit: header("alg", "HS256", hs256(issuerPub)), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/HS256-public-key-pem", edit: header("alg", "HS256", hs256(issuerPEM)), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/HS256-public-key-der", edit: header("alg", "HS256", hs256(issuerDER)), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/HS512-public-key-bytes", edit: header("alg", "HS512", hs512(issuerPub)), opts: both, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/ES256-not-allowed", edit: header("alg", "ES256", es256), want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/ES256-not-allowed-ec-kid", edit: func(h, c map[string]any) func([]byte) []byte {
			h["alg"], h["kid"] = "ES256", "ec-issuer"
			return es256
		}, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/ES256-with-ed25519-kid", edit: header("alg", "ES256", es256), opts: both, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/ES256-allowed", edit: func(h, c map[string]any) func([]byte) []byte {
			h["alg"], h["kid"] = "ES256", "ec-issuer"
			return es256
		}, opts: both},
		{name: "alg/EdDSA-with-ec-kid", edit: header("kid", "ec-issuer", nil), opts: both, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/ES384-with-p256-kid", edit: func(h, c map[string]any) func([]byte) []byte {
			h["alg"], h["kid"] = "ES384", "ec-issuer"
			// golang-jwt refuses to sign ES384 with a P-256 key; the
			// verifier must reject the pairing before any signature check.
			return func([]byte) []byte { return make([]byte, 96) }
		}, opts: both, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/PS256-on-RS256-key", edit: func(h, c map[string]any) func([]byte) []byte {
			h["alg"], h["kid"] = "PS256", "rsa-issuer"
			return signWith(jwt.SigningMethodPS256, k.rsa)
		}, opts: both, want: verify.ErrAlgorithmNotAllowed},
		{name: "alg/RS256-allowed", edit: func(h, c map[string]any) func([]byte) []byte {
			h["alg"], h["kid"] = "RS256", "rsa-issuer"
			return signWith(jwt.SigningMethodRS256, k.rsa)
		}, opts: both},

		{name: "kid/other-trusted-key", edit: header("kid", "second", nil), want: verify.ErrTokenSignature},
		{name: "kid/signed-by-other-trusted-key", edit: header("kid", "test-issuer", signWith(jwt.SigningMethodEdDSA, k.second)), want: verify.ErrTokenSignature},
		{name: "kid/untrusted-signer", edit: header("kid", "test-issuer", signWith(jwt.SigningMethodEdDSA, k.untrusted)), want: verify.ErrTokenSignature},
		{name: "kid/unknown", edit: header("kid", "attacker", signWith(jwt.SigningMethodEdDSA, k.untrusted)), want: verify.ErrUnknownKeyID},
		{name: "kid/missing", edit: header("kid", nil, nil), want: verify.ErrUnknownKeyID},
		{name: "kid/empty", edit: header("kid", "", nil), want: verify.ErrUnknownKeyID},
		{name: "kid/number", edit: header("kid", 7, nil), want: verify.ErrUnknownKeyID},
		{name: "kid/path", edit: header("kid", "../../../etc/passwd", nil), want: verify.ErrUnknownKeyID},
		{name: "kid/long", edit: header("kid", strings.Repeat("k", 2000), nil), want: verify.ErrUnknownKeyID},
		{name: "header/embedded-jwk", edit: func(h, c map[string]any) func([]byte) []byte {
			h["jwk"] = attackerJWK
			return signWith(jwt.SigningMethodEdDSA, k.untrusted)
		}, want: verify.ErrTokenSignature},
		{name: "header/jku", edit: func(h, c map[string]any) func([]byte) []byte {
			h["jku"], h["x5u"] = "http://127.0.0.1:1/keys", "http://127.0.0.1:1/cert"
			return signWith(jwt.SigningMethodEdDSA, k.untrusted)
		}, want: verify.ErrTokenSignature},
		{name: "signature/empty", edit: header("typ", "JWT", noSignature), want: verify.ErrTokenSignature},

		{name: "cnf/missing", edit: del("cnf"), want: verify.ErrConfirmation},
		{name: "cnf/empty", edit: set("cnf", map[string]any{}), want: verify.ErrConfirmation},
		{name: "cnf/ec-key", edit: set("cnf", map[string]any{"jwk": ecJWK}), want: verify.ErrConfirmation},
		{name: "cnf/x25519", edit: set("cnf", map[string]any{"jwk": map[string]any{"kty": "OKP", "crv": "X25519", "x": attackerJWK.X}}), want: verify.ErrConfirmation},
		{name: "cnf/short-key", edit: set("cnf", map[string]any{"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}), want: verify.ErrConfirmation},
		{name: "cnf/kid-only", edit: set("cnf", map[string]any{"kid": "node-1"}), want: verify.ErrConfirmation},
		{name: "cnf/string", edit: set("cnf", "node-1"), want: verify.ErrTokenMalformed},

		{name: "aud/other", edit: set("aud", []string{"payments"}), want: verify.ErrAudience},
		{name: "aud/other-string", edit: set("aud", "payments"), want: verify.ErrAudience},
		{name: "aud/missing", edit: del("aud"), want: verify.ErrTokenMalformed},
		{name: "aud/empty", edit: set("aud", []string{}), want: verify.ErrTokenMalformed},
		{name: "aud/string", edit: set("aud", "signet")},
		{name: "aud/one-of-several", edit: set("aud", []string{"payments", "signet"})},
		{name: "aud/configured", edit: set("aud", []string{"mesh"}), opts: []verify.Option{verify.WithAudience("signet", "mesh")}},

		{name: "nbf/beyond-leeway", edit: set("nbf", now+31), want: verify.ErrTokenNotYetValid},
		{name: "nbf/far-future", edit: set("nbf", now+86400), want: verify.ErrTokenNotYetValid},
		{name: "nbf/within-leeway", edit: set("nbf", now+29)},
		{name: "iat/beyond-leeway", edit: set("iat", now+31), want: verify.ErrTokenNotYetValid},
		{name: "iat/within-leeway", edit: set("iat", now+29)},
		{name: "iat/nbf-missing", edit: func(h, c map[string]any) func([]byte) []byte {
			delete(c, "iat")
			delete(c, "nbf")
			return nil
		}},
		{name: "exp/missing", edit: del("exp"), want: verify.ErrTokenMalformed},
		{name: "exp/passed", edit: set("exp", now-31), want: verify.ErrTokenExpired, skipNode: true},
		{name: "exp/within-leeway", edit: set("exp", now-29), skipNode: true},
		{name: "exp/zero", edit: set("exp", 0), want: verify.ErrTokenExpired, skipNode: true},
		{name: "jti/missing", edit: del("jti"), want: verify.ErrTokenMalformed},
		{name: "jti/empty", edit: set("jti", ""), want: verify.ErrTokenMalformed},
		{name: "sub/missing", edit: del("sub"), want: verify.ErrTokenMalformed},
		{name: "services/bad-pattern", edit: set("services", []string{"gr*eter"}), want: verify.ErrTokenMalformed},
		{name: "services/empty-pattern", edit: set("services", []string{""}), want: verify.ErrTokenMalformed},
		{name: "services/not-a-list", edit: set("services", "greeter"), want: verify.ErrTokenMalformed},
		{name: "topics/bad-pattern", edit: set("topics", []string{"*x"}), want: verify.ErrTokenMalformed},

		{name: "iss/mismatch", edit: set("iss", "attacker"), opts: []verify.Option{verify.WithIssuer("test")}, want: verify.ErrIssuer},
		{name: "iss/missing", edit: del("iss"), opts: []verify.Option{verify.WithIssuer("test")}, want: verify.ErrTokenMalformed},
		{name: "iss/not-configured", edit: set("iss", "anyone")},
		{name: "iss/configured", edit: set("iss", "test"), opts: []verify.Option{verify.WithIssuer("test")}},

		{name: "revoked/jti", edit: set("jti", "stolen-1"), opts: []verify.Option{verify.WithRevocations(verify.NewRevocations([]string{"stolen-1"}, nil))}, want: verify.ErrRevoked},
		{name: "revoked/kid", edit: header("kid", "second", signWith(jwt.SigningMethodEdDSA, k.second)), opts: []verify.Option{verify.WithRevocations(verify.NewRevocations(nil, []string{"second"}))}, want: verify.ErrRevoked},
		{name: "revoked/other-ids", edit: set("jti", "fine"), opts: []verify.Option{verify.WithRevocations(verify.NewRevocations([]string{"stolen-1"}, []string{"second"}))}},
	}
}

// wantTokenReason fails unless err wraps exactly sentinel among the
// rejection reasons; a nil sentinel means err must be nil.
func wantTokenReason(t *testing.T, err, sentinel error) {
	t.Helper()
	if sentinel == nil {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v; want it to wrap %q", err, sentinel)
	}
	for _, other := range sentinels {
		if other != sentinel && errors.Is(err, other) {
			t.Fatalf("err = %v wraps %q as well as %q", err, other, sentinel)
		}
	}
}

func TestTokenAttacks(t *testing.T) {
	f := newFixture(t)
	keys := newAttackKeys(t, f)
	nodePub := f.creds.Key.Public().(ed25519.PublicKey)

	for _, tc := range tokenCases(t, f, keys) {
		t.Run(tc.name, func(t *testing.T) {
			header := f.issuer.Header()
			claims := f.issuer.Claims(t, nodePub, []string{"greeter"}, time.Hour)
			sign := tc.edit(header, claims)
			if sign == nil {
				sign = func(input []byte) []byte { return ed25519.Sign(f.issuer.Key, input) }
			}
			token := testid.RawToken(t, header, claims, sign)

			opts := append([]verify.Option{verify.WithBundle(keys.bundle)}, tc.opts...)
			_, err := f.newVerifier(t, opts...).VerifyToken(token)
			wantTokenReason(t, err, tc.want)
			if err != nil {
				wantNoSecret(t, err.Error(), token)
				if len(err.Error()) > 1024 {
					t.Errorf("error is %d bytes; attacker-controlled values must be truncated: %.200s...", len(err.Error()), err)
				}
			}
			if tc.skipNode {
				return
			}

			// The same token inside a record signed with the cnf key.
			svc := service()
			now := f.clock.Now()
			node := testid.ForgeNode(t, testid.Forged{Key: f.creds.Key, Token: token, IssuedAt: now, Expiry: now.Add(time.Minute)}, svc, svc.Nodes[0])
			_, err = f.newVerifier(t, opts...).VerifyNode(svc.Name, svc.Version, node)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("node with this token rejected: %v", err)
				}
				return
			}
			wantReason(t, err, tc.want)
		})
	}
}

func TestTokenCnfOtherKey(t *testing.T) {
	// A genuine token for another node key does not let this node's key
	// sign records: the record signature is checked with the cnf key.
	f := newFixture(t)
	other := f.issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	if _, err := f.verifier.VerifyToken(other.Token); err != nil {
		t.Fatalf("genuine token rejected: %v", err)
	}

	svc := service()
	now := f.clock.Now()
	node := testid.ForgeNode(t, testid.Forged{Key: f.creds.Key, Token: other.Token, IssuedAt: now, Expiry: now.Add(time.Minute)}, svc, svc.Nodes[0])
	_, err := f.verifier.VerifyNode(svc.Name, svc.Version, node)
	wantReason(t, err, verify.ErrBadSignature)
}

func TestTokenExpiresInCache(t *testing.T) {
	// A token that verified once is cached; the cache must still apply
	// its expiry.
	f := newFixture(t)
	if _, err := f.verifier.VerifyToken(f.creds.Token); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour + verify.DefaultLeeway)
	_, err := f.verifier.VerifyToken(f.creds.Token)
	wantTokenReason(t, err, verify.ErrTokenExpired)
}

func TestTokenRevokedAfterCache(t *testing.T) {
	f := newFixture(t)
	revocations := &switchableRevocations{list: verify.NewRevocations(nil, nil)}
	v := f.newVerifier(t, verify.WithRevocations(revocations))
	signed := f.sign(t, service())

	id, err := v.VerifyToken(f.creds.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatal(err)
	}

	for name, list := range map[string]*verify.Revocations{
		"jti": verify.NewRevocations([]string{id.TokenID}, nil),
		"kid": verify.NewRevocations(nil, []string{"test-issuer"}),
	} {
		t.Run(name, func(t *testing.T) {
			revocations.set(list)
			_, err := v.VerifyToken(f.creds.Token)
			wantTokenReason(t, err, verify.ErrRevoked)
			_, err = v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
			wantReason(t, err, verify.ErrRevoked)
		})
	}
}

func TestTokenBundleRotation(t *testing.T) {
	// Removing an issuer key from the bundle rejects the records it
	// vouched for, even when they are cached.
	f := newFixture(t)
	other := testid.NewNodeKey(t)
	bundles := &switchableBundle{bundle: f.issuer.Bundle}
	v := f.newVerifier(t, verify.WithBundle(bundles))
	signed := f.sign(t, service())

	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatal(err)
	}
	rotated, err := verify.NewBundle(verify.IssuerKey{ID: "next", Key: other.Public()})
	if err != nil {
		t.Fatal(err)
	}
	bundles.set(rotated)
	_, err = v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
	wantReason(t, err, verify.ErrUnknownKeyID)

	bundles.set(f.issuer.Bundle)
	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatalf("record rejected after its key returned to the bundle: %v", err)
	}
}

func TestTokenNewRejectsHMAC(t *testing.T) {
	f := newFixture(t)
	for _, alg := range []string{"HS256", "HS384", "HS512", "none", "eddsa", ""} {
		_, err := verify.New(verify.WithBundle(f.issuer.Bundle), verify.WithAlgorithms(alg))
		if err == nil {
			t.Errorf("verify.New accepted algorithm %q", alg)
		}
	}
	if _, err := verify.New(verify.WithBundle(f.issuer.Bundle), verify.WithAlgorithms()); err == nil {
		t.Error("verify.New accepted an empty algorithm list")
	}
}

func TestTokenMalformedStructure(t *testing.T) {
	f := newFixture(t)
	tok := f.creds.Token
	segments := strings.Split(tok, ".")

	lastFlipped := []byte(segments[2])
	// The last character of a 64-byte signature holds 2 data bits and 4
	// padding bits; setting a padding bit makes the encoding non-canonical.
	lastFlipped[len(lastFlipped)-1] = lastFlipped[len(lastFlipped)-1] ^ 1

	for name, token := range map[string]string{
		"empty":              "",
		"one-segment":        segments[0],
		"two-segments":       segments[0] + "." + segments[1],
		"four-segments":      tok + ".x",
		"padded":             tok + "==",
		"std-base64":         strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/",
		"non-canonical-tail": segments[0] + "." + segments[1] + "." + string(lastFlipped),
		"header-not-json":    "bm90IGpzb24." + segments[1] + "." + segments[2],
		"payload-not-json":   segments[0] + ".bm90IGpzb24." + segments[2],
		"whitespace":         " " + tok,
		"newline":            segments[0] + ".\n" + segments[1] + "." + segments[2],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.verifier.VerifyToken(token)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, verify.ErrTokenMalformed) && !errors.Is(err, verify.ErrTokenSignature) {
				t.Fatalf("err = %v; want token-malformed or token-bad-signature", err)
			}
		})
	}
}

// switchableRevocations is a RevocationSource whose list a test replaces.
type switchableRevocations struct {
	mu   sync.Mutex
	list *verify.Revocations
	err  error
}

func (s *switchableRevocations) set(l *verify.Revocations) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = l
}

func (s *switchableRevocations) Revocations() (*verify.Revocations, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list, s.err
}

// switchableBundle is a BundleSource whose bundle a test replaces.
type switchableBundle struct {
	mu     sync.Mutex
	bundle *verify.Bundle
	err    error
}

func (s *switchableBundle) set(b *verify.Bundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bundle = b
}

func (s *switchableBundle) Bundle() (*verify.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle, s.err
}
