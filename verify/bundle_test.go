package verify_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

func pemPublic(t *testing.T, pub any) string {
	t.Helper()
	b, err := signing.MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseBundlePEM(t *testing.T) {
	a, b := testid.NewNodeKey(t), testid.NewNodeKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	data := "\n" + pemPublic(t, a.Public()) + pemPublic(t, b.Public()) + pemPublic(t, &ec.PublicKey) + "\n\n"

	bundle, err := verify.ParseBundle([]byte(data))
	if err != nil {
		t.Fatalf("ParseBundle: %v", err)
	}
	if got := len(bundle.KeyIDs()); got != 3 {
		t.Fatalf("bundle has %d keys, want 3", got)
	}
	for _, pub := range []any{a.Public(), b.Public(), &ec.PublicKey} {
		id, _ := jwk.Thumbprint(pub)
		k, ok := bundle.Key(id)
		if !ok {
			t.Fatalf("key %s missing; PEM keys get their RFC 7638 thumbprint as id", id)
		}
		if k.Algorithm != "" {
			t.Errorf("PEM key %s has algorithm %q, want none", id, k.Algorithm)
		}
	}

	// The thumbprint id is the issuer's default kid.
	clock := testid.NewClock(start)
	issuer := &signing.Issuer{Key: a, Name: "test", Now: clock.Now}
	node := testid.NewNodeKey(t)
	token, err := issuer.Issue(signing.Identity{Subject: "s", NodeKey: node.Public().(ed25519.PublicKey), Services: []string{"s"}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.WithBundle(bundle), verify.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(token); err != nil {
		t.Fatalf("token with the default kid rejected by a PEM bundle: %v", err)
	}
}

func TestParseBundleJWKS(t *testing.T) {
	a := testid.NewNodeKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ka, _ := jwk.FromPublicKey(a.Public())
	ka.Kid, ka.Alg, ka.Use = "issuer-a", "EdDSA", "sig"
	kec, _ := jwk.FromPublicKey(&ec.PublicKey)
	set, _ := json.Marshal(map[string]any{"keys": []any{ka, kec}})

	bundle, err := verify.ParseBundle(set)
	if err != nil {
		t.Fatalf("ParseBundle: %v", err)
	}
	if k, ok := bundle.Key("issuer-a"); !ok || k.Algorithm != "EdDSA" {
		t.Fatalf("issuer-a = %+v, %v", k, ok)
	}
	thumb, _ := kec.Thumbprint()
	if _, ok := bundle.Key(thumb); !ok {
		t.Fatalf("JWK without kid is not under its thumbprint %s", thumb)
	}

	out, err := bundle.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	again, err := verify.ParseBundle(out)
	if err != nil {
		t.Fatalf("ParseBundle(MarshalJWKS()): %v", err)
	}
	if strings.Join(again.KeyIDs(), ",") != strings.Join(bundle.KeyIDs(), ",") {
		t.Fatalf("round trip changed key ids: %v -> %v", bundle.KeyIDs(), again.KeyIDs())
	}
}

func TestParseBundleRejects(t *testing.T) {
	a := testid.NewNodeKey(t)
	pubPEM := pemPublic(t, a.Public())
	der, _ := x509.MarshalPKCS8PrivateKey(a)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := pemPublic(t, &small.PublicKey)
	ka, _ := jwk.FromPublicKey(a.Public())
	x := ka.X

	cases := map[string]struct {
		data    string
		mention string // a word the error must contain
	}{
		"empty":               {"", "empty"},
		"blank":               {" \n\t", "empty"},
		"garbage":             {"hello", "PEM"},
		"private-pem":         {privPEM, "private key"},
		"cert-pem":            {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "CERTIFICATE"},
		"trailing-text":       {pubPEM + "junk", "after its last PEM block"},
		"bad-der":             {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "block 1"},
		"small-rsa-pem":       {smallPEM, "1024 bits"},
		"duplicate-pem":       {pubPEM + pubPEM, "twice"},
		"jwks-not-json":       {"{nope", "JWK Set"},
		"jwks-no-keys":        {`{"keys":[]}`, "no keys"},
		"jwks-keys-missing":   {`{}`, "no keys"},
		"jwks-key-not-object": {`{"keys":[1]}`, "key 0"},
		"jwks-private-d":      {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","d":"` + x + `"}]}`, `"d"`},
		"jwks-private-rsa-p":  {`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","p":"AQAB"}]}`, `"p"`},
		"jwks-oct":            {`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `"k"`},
		"jwks-oct-no-k":       {`{"keys":[{"kty":"oct","kid":"hmac"}]}`, "oct"},
		"jwks-use-enc":        {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","use":"enc"}]}`, "enc"},
		"jwks-alg-mismatch":   {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","alg":"ES256"}]}`, "ES256"},
		"jwks-alg-hs256":      {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","alg":"HS256"}]}`, "HS256"},
		"jwks-duplicate-kid":  {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a"},{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a"}]}`, "twice"},
		"jwks-x25519":         {`{"keys":[{"kty":"OKP","crv":"X25519","x":"` + x + `"}]}`, "X25519"},
		"jwks-short-x":        {`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, "key 0"},
		"jwks-ec-off-curve":   {`{"keys":[{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"}]}`, "key 0"},
		"jwks-unknown-kty":    {`{"keys":[{"kty":"XYZ"}]}`, "XYZ"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := verify.ParseBundle([]byte(tc.data))
			if err == nil {
				t.Fatalf("ParseBundle accepted it: %v", b.KeyIDs())
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.HasPrefix(name, "jwks-private") && strings.Contains(err.Error(), x) {
				t.Errorf("error contains key material: %v", err)
			}
		})
	}
}

func TestNewBundleRejects(t *testing.T) {
	a := testid.NewNodeKey(t)
	cases := map[string][]verify.IssuerKey{
		"none":          nil,
		"empty-id":      {{ID: "", Key: a.Public()}},
		"duplicate":     {{ID: "x", Key: a.Public()}, {ID: "x", Key: a.Public()}},
		"private-key":   {{ID: "x", Key: a}},
		"short-key":     {{ID: "x", Key: ed25519.PublicKey(make([]byte, 5))}},
		"nil-key":       {{ID: "x"}},
		"alg-mismatch":  {{ID: "x", Key: a.Public(), Algorithm: "RS256"}},
		"alg-hs256":     {{ID: "x", Key: a.Public(), Algorithm: "HS256"}},
		"bytes-as-key":  {{ID: "x", Key: []byte("secret")}},
		"string-as-key": {{ID: "x", Key: "secret"}},
	}
	for name, keys := range cases {
		if _, err := verify.NewBundle(keys...); err == nil {
			t.Errorf("%s: NewBundle accepted it", name)
		}
	}
}

func TestFileBundleReload(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.pem")
	first := testid.NewNodeKey(t)
	if err := os.WriteFile(path, []byte(pemPublic(t, first.Public())), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &testid.LogBuffer{}
	src, err := verify.NewFileBundle(path, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	src.SetInterval(0)
	v := f.newVerifier(t, verify.WithBundle(src))
	signed := f.sign(t, service())

	_, err = v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
	wantReason(t, err, verify.ErrUnknownKeyID)

	// Publish a JWK Set with the fixture issuer's key under its kid.
	k, _ := jwk.FromPublicKey(f.issuer.Key.Public())
	k.Kid = "test-issuer"
	set, _ := json.Marshal(map[string]any{"keys": []any{k}})
	writeNewer(t, path, set)
	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatalf("node rejected after the bundle file gained its issuer key: %v", err)
	}

	// A broken file keeps the last good bundle and logs the file name.
	writeNewer(t, path, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatalf("node rejected after the bundle file broke: %v", err)
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("log does not name the broken file %s:\n%s", path, logs)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatalf("node rejected after the bundle file was removed: %v", err)
	}

	if _, err := verify.NewFileBundle(filepath.Join(dir, "missing.pem"), logs.Logger()); err == nil {
		t.Error("NewFileBundle opened a missing file")
	}
}

// writeNewer replaces a file's content and moves its modification time
// forward, so a reload sees the change even within one clock tick.
func writeNewer(t *testing.T, path string, data []byte) {
	t.Helper()
	var mod time.Time
	if info, err := os.Stat(path); err == nil {
		mod = info.ModTime()
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	next := mod.Add(time.Second)
	if err := os.Chtimes(path, next, next); err != nil {
		t.Fatal(err)
	}
}

func TestNewBundleRejectsSmallRSA(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, err = verify.NewBundle(verify.IssuerKey{ID: "weak", Key: &small.PublicKey})
	if err == nil || !strings.Contains(err.Error(), "1024 bits") {
		t.Fatalf("NewBundle(1024-bit RSA) err = %v; want a key size error", err)
	}
}
