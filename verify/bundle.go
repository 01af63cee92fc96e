package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/signet-micro/signet/internal/jwk"
)

// IssuerKey is a trusted issuer public key.
type IssuerKey struct {
	// ID is the key id that tokens name in their "kid" header.
	ID string

	// Key is an ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey.
	Key crypto.PublicKey

	// Algorithm, when set, is the only JWS algorithm accepted with this key
	// (the JWK "alg" member).
	Algorithm string
}

// Bundle is an immutable set of trusted issuer keys, indexed by key id.
// Several keys may be trusted at once, so an issuer key can be rotated by
// publishing the new key before tokens signed with it appear and removing
// the old one after its tokens expire.
type Bundle struct {
	keys       map[string]*IssuerKey
	generation uint64
}

var bundleGeneration atomic.Uint64

// NewBundle returns a bundle of keys. It fails on an empty list, a
// duplicate or empty key id, an unsupported key type, or an RSA key shorter
// than jwk.MinRSABits.
func NewBundle(keys ...IssuerKey) (*Bundle, error) {
	if len(keys) == 0 {
		return nil, errors.New("verify: trust bundle has no keys")
	}

	b := &Bundle{keys: make(map[string]*IssuerKey, len(keys)), generation: bundleGeneration.Add(1)}
	for i := range keys {
		k := keys[i]
		if k.ID == "" {
			return nil, fmt.Errorf("verify: trust bundle key %d has an empty key id", i)
		}
		if _, dup := b.keys[k.ID]; dup {
			return nil, fmt.Errorf("verify: trust bundle lists key id %q twice", k.ID)
		}
		if _, err := jwk.FromPublicKey(k.Key); err != nil {
			return nil, fmt.Errorf("verify: trust bundle key %q: %w", k.ID, err)
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < jwk.MinRSABits {
			return nil, fmt.Errorf("verify: trust bundle key %q: RSA key has %d bits, fewer than %d", k.ID, rk.N.BitLen(), jwk.MinRSABits)
		}
		if k.Algorithm != "" && !algorithmFits(k.Algorithm, k.Key) {
			return nil, fmt.Errorf("verify: trust bundle key %q: algorithm %q does not fit a %s key", k.ID, k.Algorithm, keyKind(k.Key))
		}
		b.keys[k.ID] = &k
	}
	return b, nil
}

// Key returns the key with id kid.
func (b *Bundle) Key(kid string) (*IssuerKey, bool) {
	k, ok := b.keys[kid]
	return k, ok
}

// KeyIDs returns the key ids in the bundle, sorted.
func (b *Bundle) KeyIDs() []string {
	ids := make([]string, 0, len(b.keys))
	for id := range b.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Bundle returns b itself, so a fixed Bundle is a [BundleSource].
func (b *Bundle) Bundle() (*Bundle, error) { return b, nil }

// BundleSource hands out the current trust bundle. Sources that reload
// a file return a new Bundle after each change.
type BundleSource interface {
	Bundle() (*Bundle, error)
}

// ParseBundle decodes a trust bundle from either an RFC 7517 JWK Set
// (a JSON object with a "keys" array) or one or more PEM "PUBLIC KEY"
// blocks. A PEM key, or a JWK without "kid", gets the RFC 7638 thumbprint of
// the key as its id, which is what `signet issue` writes as "kid" by
// default. A JWK that holds private members ("d", "p", ...) is rejected,
// because a private key in a trust bundle means it has leaked.
func ParseBundle(data []byte) (*Bundle, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("verify: trust bundle is empty; expected a JWK Set or PEM public keys")
	}
	if trimmed[0] == '{' {
		return parseJWKS(trimmed)
	}
	return parsePEMBundle(trimmed)
}

func parsePEMBundle(data []byte) (*Bundle, error) {
	var keys []IssuerKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			if block.Type == "PRIVATE KEY" || block.Type == "ENCRYPTED PRIVATE KEY" {
				return nil, fmt.Errorf("verify: trust bundle PEM block %d is a private key; a bundle contains only public keys (write the public half with `openssl pkey -pubout`)", n)
			}
			return nil, fmt.Errorf("verify: trust bundle PEM block %d is %q; expected \"PUBLIC KEY\"", n, block.Type)
		}

		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("verify: trust bundle PEM block %d: %w", n, err)
		}
		id, err := jwk.Thumbprint(pub)
		if err != nil {
			return nil, fmt.Errorf("verify: trust bundle PEM block %d: %w", n, err)
		}
		keys = append(keys, IssuerKey{ID: id, Key: pub})
	}

	if len(bytes.TrimSpace(data)) != 0 {
		return nil, errors.New("verify: trust bundle has text after its last PEM block that is not PEM; expected only PUBLIC KEY blocks")
	}
	if len(keys) == 0 {
		return nil, errors.New("verify: trust bundle has no PEM block; expected a JWK Set or PEM public keys")
	}
	return NewBundle(keys...)
}

var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k"}

func parseJWKS(data []byte) (*Bundle, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("verify: trust bundle is not a JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("verify: trust bundle JWK Set has no keys")
	}

	keys := make([]IssuerKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, fmt.Errorf("verify: trust bundle key %d is not a JSON object: %w", i, err)
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return nil, fmt.Errorf("verify: trust bundle key %d contains the private member %q; publish only public keys and treat this key as leaked", i, m)
			}
		}

		var k jwk.Key
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("verify: trust bundle key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("verify: trust bundle key %d (kid %q) has use %q; issuer keys need use \"sig\" or none", i, k.Kid, k.Use)
		}
		pub, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("verify: trust bundle key %d (kid %q): %w", i, k.Kid, err)
		}

		id := k.Kid
		if id == "" {
			if id, err = k.Thumbprint(); err != nil {
				return nil, fmt.Errorf("verify: trust bundle key %d: %w", i, err)
			}
		}
		keys = append(keys, IssuerKey{ID: id, Key: pub, Algorithm: k.Alg})
	}
	return NewBundle(keys...)
}

// MarshalJWKS encodes b as a JWK Set.
func (b *Bundle) MarshalJWKS() ([]byte, error) {
	set := struct {
		Keys []*jwk.Key `json:"keys"`
	}{}
	for _, id := range b.KeyIDs() {
		ik := b.keys[id]
		k, err := jwk.FromPublicKey(ik.Key)
		if err != nil {
			return nil, err
		}
		k.Kid, k.Alg, k.Use = ik.ID, ik.Algorithm, "sig"
		set.Keys = append(set.Keys, k)
	}
	return json.MarshalIndent(set, "", "  ")
}

func keyKind(k crypto.PublicKey) string {
	switch k.(type) {
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case *rsa.PublicKey:
		return "RSA"
	default:
		return fmt.Sprintf("%T", k)
	}
}
