package verify_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

func FuzzVerifyToken(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.creds.Token)
	nodePub := fx.creds.Key.Public().(ed25519.PublicKey)
	for _, edit := range []func(h, c map[string]any){
		func(h, c map[string]any) { h["alg"] = "none" },
		func(h, c map[string]any) { h["alg"] = "HS256" },
		func(h, c map[string]any) { h["alg"] = "ES256" },
		func(h, c map[string]any) { h["kid"] = "unknown" },
		func(h, c map[string]any) { delete(h, "kid") },
		func(h, c map[string]any) { delete(c, "cnf") },
		func(h, c map[string]any) { c["aud"] = "other" },
		func(h, c map[string]any) { c["nbf"] = 1 << 40 },
		func(h, c map[string]any) { delete(c, "exp") },
		func(h, c map[string]any) { delete(c, "jti") },
		func(h, c map[string]any) { c["services"] = []string{"a*b"} },
		func(h, c map[string]any) { c["cnf"] = map[string]any{"jwk": map[string]string{"kty": "EC"}} },
	} {
		h, c := fx.issuer.Header(), fx.issuer.Claims(f, nodePub, []string{"greeter"}, time.Hour)
		edit(h, c)
		f.Add(fx.issuer.SignRaw(f, h, c))
	}
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0.e30.")

	allowedErrors := []error{
		verify.ErrTokenMalformed, verify.ErrTokenSignature, verify.ErrAlgorithmNotAllowed, verify.ErrUnknownKeyID,
		verify.ErrTokenExpired, verify.ErrTokenNotYetValid, verify.ErrAudience, verify.ErrIssuer,
		verify.ErrConfirmation, verify.ErrRevoked,
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := fx.verifier.VerifyToken(token)
		if err == nil {
			// Only tokens the issuer signed verify; the fuzzer cannot forge
			// one, so an accepted token must be a seed's signature over the
			// same claims.
			if id == nil || len(id.NodeKey) != ed25519.PublicKeySize || id.TokenID == "" || id.Subject == "" {
				t.Fatalf("accepted token with incomplete identity %+v", id)
			}
			return
		}
		matched := 0
		for _, e := range allowedErrors {
			if errors.Is(err, e) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("VerifyToken err = %v wraps %d token reasons; want exactly 1", err, matched)
		}
		if len(token) > 64 && strings.Contains(err.Error(), token) {
			t.Fatalf("error contains the whole token")
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	a := testid.NewNodeKey(f)
	pub, _ := signing.MarshalPublicKeyPEM(a.Public())
	f.Add(pub)
	f.Add(append(append([]byte{}, pub...), pub...))
	k, _ := jwk.FromPublicKey(a.Public())
	k.Kid = "a"
	set, _ := json.Marshal(map[string]any{"keys": []any{k}})
	f.Add(set)
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + k.X + `","d":"` + k.X + `"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + k.X + `","alg":"HS256"}]}`))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("{"))
	f.Add([]byte(""))

	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := verify.ParseBundle(data)
		if err != nil {
			if b != nil {
				t.Fatal("ParseBundle returned a bundle with its error")
			}
			return
		}
		ids := b.KeyIDs()
		if len(ids) == 0 {
			t.Fatal("ParseBundle returned an empty bundle")
		}
		for _, id := range ids {
			key, ok := b.Key(id)
			if !ok || key.ID != id {
				t.Fatalf("Key(%q) = %+v, %v", id, key, ok)
			}
			if _, err := jwk.FromPublicKey(key.Key); err != nil {
				t.Fatalf("bundle key %q is not a public key: %v", id, err)
			}
		}

		// A parsed bundle survives its own JWK Set encoding.
		out, err := b.MarshalJWKS()
		if err != nil {
			t.Fatalf("MarshalJWKS: %v", err)
		}
		again, err := verify.ParseBundle(out)
		if err != nil {
			t.Fatalf("ParseBundle(MarshalJWKS()) failed: %v\n%s", err, out)
		}
		if strings.Join(again.KeyIDs(), "\x00") != strings.Join(ids, "\x00") {
			t.Fatalf("key ids changed in a round trip: %q -> %q", ids, again.KeyIDs())
		}
	})
}

func FuzzParseRevocations(f *testing.F) {
	f.Add([]byte("jti abc\nkid def\n"))
	f.Add([]byte("# comment\n\n  jti  abc  \r\n"))
	f.Add([]byte("jti a b\n"))
	f.Add([]byte("sub x\n"))
	f.Add([]byte("jti\n"))
	f.Add([]byte("\x00\xff"))

	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := verify.ParseRevocations(data)
		if err != nil {
			if list != nil {
				t.Fatal("ParseRevocations returned a list with its error")
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error is %d bytes", len(err.Error()))
			}
			return
		}

		// Every accepted line revokes exactly what it names.
		entries := 0
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			kind, id, _ := strings.Cut(line, " ")
			id = strings.TrimSpace(id)
			entries++
			switch kind {
			case "jti":
				if !list.Revoked(id, "") {
					t.Fatalf("line %q does not revoke token %q", line, id)
				}
			case "kid":
				if !list.Revoked("", id) {
					t.Fatalf("line %q does not revoke key %q", line, id)
				}
			default:
				t.Fatalf("line %q with kind %q was accepted", line, kind)
			}
		}
		if list.Len() > entries {
			t.Fatalf("list has %d entries from %d lines", list.Len(), entries)
		}
	})
}
