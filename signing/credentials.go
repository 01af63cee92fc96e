package signing

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/internal/record"
)

// Credentials are a node's Ed25519 key and the identity token bound to it.
type Credentials struct {
	Key   ed25519.PrivateKey
	Token string

	// Claims are the token's claims, decoded without checking the issuer's
	// signature: a node trusts its own token, and verifiers check it.
	Claims *Claims

	tokenDigest [32]byte
}

// NewCredentials checks that token is a JWT whose "cnf" claim names key's
// public half and that has an expiry, and returns them as Credentials.
func NewCredentials(key ed25519.PrivateKey, token string) (*Credentials, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("signing: node key is not an Ed25519 private key")
	}

	claims := &Claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return nil, fmt.Errorf("signing: identity token is not a JWT: %w", err)
	}
	if claims.ExpiresAt == nil {
		return nil, errors.New("signing: identity token has no exp claim; issue tokens with a lifetime")
	}

	pub, err := claims.NodeKey()
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if !pub.Equal(key.Public()) {
		return nil, errors.New("signing: the identity token's cnf key is not the public half of the node key; issue the token for this key")
	}

	return &Credentials{Key: key, Token: token, Claims: claims, tokenDigest: record.DigestToken(token)}, nil
}

// Credentials returns c itself, so fixed Credentials are a [CredentialSource].
func (c *Credentials) Credentials() (*Credentials, error) {
	return c, nil
}

// CredentialSource hands out the current node credentials. Sources that
// reload files return new Credentials after a renewal, and the [Signer]
// re-signs records with them.
type CredentialSource interface {
	Credentials() (*Credentials, error)
}
