// Package jwk converts public keys to and from RFC 7517 JSON Web Keys and
// computes RFC 7638 thumbprints. It handles the key types signet accepts:
// OKP Ed25519 (RFC 8037), EC P-256 and P-384, and RSA.
package jwk

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Key is the JSON form of a public JWK. Private members are not part of
// the struct, so a private JWK decodes to its public half.
type Key struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

var b64 = base64.RawURLEncoding.Strict()

// FromPublicKey returns the JWK of an Ed25519, ECDSA or RSA public key.
func FromPublicKey(pub crypto.PublicKey) (*Key, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return &Key{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k)}, nil
	case *ecdsa.PublicKey:
		ek, err := k.ECDH()
		if err != nil {
			return nil, fmt.Errorf("invalid EC public key: %w", err)
		}
		raw := ek.Bytes() // 0x04 || X || Y
		size := (len(raw) - 1) / 2
		return &Key{Kty: "EC", Crv: k.Curve.Params().Name, X: b64.EncodeToString(raw[1 : 1+size]), Y: b64.EncodeToString(raw[1+size:])}, nil
	case *rsa.PublicKey:
		return &Key{Kty: "RSA", N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	default:
		return nil, fmt.Errorf("unsupported public key type %T; use Ed25519, ECDSA P-256/P-384 or RSA", pub)
	}
}

// PublicKey decodes k into an ed25519.PublicKey, *ecdsa.PublicKey or
// *rsa.PublicKey, rejecting keys that are malformed or too weak.
func (k *Key) PublicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP key curve %q is not supported; use Ed25519", k.Crv)
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("OKP key member x is not a %d-byte base64url value", ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	case "EC":
		return k.ecPublicKey()
	case "RSA":
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("RSA key members n and e are not base64url integers")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, fewer than %d", pub.N.BitLen(), MinRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("RSA key exponent %d is invalid", pub.E)
		}
		return pub, nil
	case "oct":
		return nil, errors.New("symmetric (oct) keys are not accepted; an issuer key must be public")
	default:
		return nil, fmt.Errorf("key type %q is not supported; use OKP, EC or RSA", k.Kty)
	}
}

func (k *Key) ecPublicKey() (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	var ecurve ecdh.Curve
	switch k.Crv {
	case "P-256":
		curve, ecurve = elliptic.P256(), ecdh.P256()
	case "P-384":
		curve, ecurve = elliptic.P384(), ecdh.P384()
	default:
		return nil, fmt.Errorf("EC key curve %q is not supported; use P-256 or P-384", k.Crv)
	}

	size := (curve.Params().BitSize + 7) / 8
	x, errX := b64.DecodeString(k.X)
	y, errY := b64.DecodeString(k.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, fmt.Errorf("EC key members x and y are not %d-byte base64url values", size)
	}

	raw := append(append([]byte{4}, x...), y...)
	if _, err := ecurve.NewPublicKey(raw); err != nil {
		return nil, fmt.Errorf("EC key is not a point on %s: %w", k.Crv, err)
	}
	return &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of k, base64url
// encoded: the hash of the required members in lexicographic order.
func (k *Key) Thumbprint() (string, error) {
	var members any
	switch k.Kty {
	case "OKP":
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{k.Crv, k.Kty, k.X}
	case "EC":
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{k.Crv, k.Kty, k.X, k.Y}
	case "RSA":
		members = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{k.E, k.Kty, k.N}
	default:
		return "", fmt.Errorf("key type %q has no thumbprint", k.Kty)
	}

	b, err := json.Marshal(members)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return b64.EncodeToString(sum[:]), nil
}

// Thumbprint returns the RFC 7638 thumbprint of a public key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := FromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return k.Thumbprint()
}
