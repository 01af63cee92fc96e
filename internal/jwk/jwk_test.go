package jwk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

func TestThumbprintRFC8037(t *testing.T) {
	// RFC 8037 appendix A.3: the thumbprint of the Ed25519 key of A.2.
	k := &Key{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
	got, err := k.Thumbprint()
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}

	// Members outside the required set do not change the thumbprint.
	k.Kid, k.Alg, k.Use = "other", "EdDSA", "sig"
	if again, _ := k.Thumbprint(); again != got {
		t.Fatalf("optional members changed the thumbprint: %s", again)
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 7638 section 3.1: the example RSA key.
	k := &Key{
		Kty: "RSA",
		E:   "AQAB",
		N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs" +
			"tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbI" +
			"SD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
	}
	got, err := k.Thumbprint()
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	for name, pub := range map[string]any{"ed25519": edPub, "p256": &p256.PublicKey, "p384": &p384.PublicKey, "rsa": &rsaKey.PublicKey} {
		t.Run(name, func(t *testing.T) {
			k, err := FromPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(k)
			var back Key
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			got, err := back.PublicKey()
			if err != nil {
				t.Fatalf("PublicKey of %s: %v", data, err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if !got.(equaler).Equal(pub) {
				t.Fatalf("round trip changed the key: %s", data)
			}
			if _, err := Thumbprint(pub); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPublicKeyRejects(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := FromPublicKey(&p256.PublicKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK, _ := FromPublicKey(&small.PublicKey)
	big2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaJWK, _ := FromPublicKey(&big2048.PublicKey)
	evenE := *rsaJWK
	evenE.E = b64.EncodeToString(big.NewInt(65536).Bytes())
	oneE := *rsaJWK
	oneE.E = "AQ"
	hugeE := *rsaJWK
	hugeE.E = b64.EncodeToString([]byte{1, 0, 0, 0, 1})
	offCurve := *good
	offCurve.Y = offCurve.X
	wrongCurve := *good
	wrongCurve.Crv = "P-384"
	padded := &Key{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="}

	cases := map[string]*Key{
		"empty":        {},
		"oct":          {Kty: "oct"},
		"okp-x25519":   {Kty: "OKP", Crv: "X25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
		"okp-short":    {Kty: "OKP", Crv: "Ed25519", X: "AAAA"},
		"okp-long":     {Kty: "OKP", Crv: "Ed25519", X: strings.Repeat("A", 44)},
		"okp-padded":   padded,
		"okp-std-b64":  {Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
		"ec-off-curve": &offCurve,
		"ec-wrong-crv": &wrongCurve,
		"ec-p521":      {Kty: "EC", Crv: "P-521", X: good.X, Y: good.Y},
		"ec-no-y":      {Kty: "EC", Crv: "P-256", X: good.X},
		"rsa-small":    smallJWK,
		"rsa-even-e":   &evenE,
		"rsa-e-1":      &oneE,
		"rsa-huge-e":   &hugeE,
		"rsa-no-n":     {Kty: "RSA", E: "AQAB"},
		"lower-kty":    {Kty: "okp", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	}
	for name, k := range cases {
		if pub, err := k.PublicKey(); err == nil {
			t.Errorf("%s: PublicKey accepted %+v as %T", name, k, pub)
		}
	}
}

func TestFromPublicKeyRejects(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for name, pub := range map[string]any{
		"nil":         nil,
		"private":     priv,
		"short":       ed25519.PublicKey(make([]byte, 31)),
		"bytes":       []byte("secret"),
		"ecdsa-value": ecdsa.PublicKey{},
	} {
		if _, err := FromPublicKey(pub); err == nil {
			t.Errorf("%s: FromPublicKey accepted it", name)
		}
	}
	if _, err := (&Key{Kty: "oct"}).Thumbprint(); err == nil {
		t.Error("Thumbprint of an oct key succeeded")
	}
}
