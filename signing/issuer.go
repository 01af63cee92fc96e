package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/internal/record"
)

// Issuer mints identity tokens with an Ed25519 issuer key (JWS "EdDSA").
type Issuer struct {
	// Key signs the tokens.
	Key ed25519.PrivateKey

	// KeyID is written as the JWS "kid" header. When empty, the RFC 7638
	// thumbprint of the public key is used, which is also the key id that a
	// trust bundle of PEM public keys assigns.
	KeyID string

	// Name is written as the "iss" claim.
	Name string

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Identity describes the token to issue for one workload.
type Identity struct {
	// Subject names the workload ("sub"), for example "greeter".
	Subject string

	// NodeKey is the node's Ed25519 public key, put in "cnf".
	NodeKey ed25519.PublicKey

	// Services and Topics are the patterns the identity is allowed.
	Services []string
	Topics   []string

	// Audience is the "aud" claim; empty means [DefaultAudience].
	Audience []string

	// Lifetime is how long the token is valid from its issue time.
	Lifetime time.Duration

	// ID is the "jti" claim; empty means a random 128-bit hex value.
	ID string
}

// Issue returns a signed identity token for id.
func (is *Issuer) Issue(id Identity) (string, error) {
	if len(is.Key) != ed25519.PrivateKeySize {
		return "", errors.New("signing: issuer key is not an Ed25519 private key")
	}
	if id.Subject == "" {
		return "", errors.New("signing: identity subject is empty; name the workload")
	}
	if len(id.NodeKey) != ed25519.PublicKeySize {
		return "", errors.New("signing: identity node key is not an Ed25519 public key")
	}
	if len(id.Services) == 0 && len(id.Topics) == 0 {
		return "", errors.New("signing: identity allows no service and no topic; list at least one")
	}
	if err := CheckPatterns("services", id.Services); err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	if err := CheckPatterns("topics", id.Topics); err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	if id.Lifetime <= 0 {
		return "", fmt.Errorf("signing: token lifetime %v is not positive", id.Lifetime)
	}

	kid := is.KeyID
	if kid == "" {
		var err error
		if kid, err = jwk.Thumbprint(is.Key.Public()); err != nil {
			return "", fmt.Errorf("signing: %w", err)
		}
	}

	jti := id.ID
	if jti == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("signing: generating token id: %w", err)
		}
		jti = hex.EncodeToString(b[:])
	}

	aud := id.Audience
	if len(aud) == 0 {
		aud = []string{DefaultAudience}
	}

	nodeJWK, err := jwk.FromPublicKey(id.NodeKey)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}

	now := time.Now
	if is.Now != nil {
		now = is.Now
	}
	iat := now().Truncate(time.Second)

	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    is.Name,
			Subject:   id.Subject,
			Audience:  aud,
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(id.Lifetime)),
			ID:        jti,
		},
		Confirmation: &Confirmation{JWK: nodeJWK},
		Services:     id.Services,
		Topics:       id.Topics,
	}

	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(is.Key)
	if err != nil {
		return "", fmt.Errorf("signing: signing token: %w", err)
	}
	if max := record.MaxTokenParts * record.MaxValueLen; len(signed) > max {
		return "", fmt.Errorf("signing: the token is %d bytes, more than the %d bytes that fit in a node record; list fewer or shorter service and topic patterns", len(signed), max)
	}
	return signed, nil
}
