package signing

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/internal/jwk"
)

// DefaultAudience is the "aud" value that [Issuer.Issue] writes and that a
// verifier requires when no other audience is configured.
const DefaultAudience = "signet"

// BrokerService is the service name under which go-micro's http broker
// registers its subscriber nodes. A node of this service serves a topic,
// named by its "topic" metadata, so an identity needs the topic in its
// "topics" claim as well as the service name in "services".
const BrokerService = "micro.http.broker"

// TopicMetadataKey is the node metadata key in which the http broker
// stores the subscribed topic.
const TopicMetadataKey = "topic"

// Claims are the claims of an identity token.
type Claims struct {
	jwt.RegisteredClaims

	// Confirmation holds the node's public key (RFC 7800 "cnf").
	Confirmation *Confirmation `json:"cnf,omitempty"`

	// Services lists the service names the identity may register. Each is
	// an exact name or a prefix that ends in "*".
	Services []string `json:"services,omitempty"`

	// Topics lists the broker topics the identity may subscribe to, in
	// the same pattern form as Services.
	Topics []string `json:"topics,omitempty"`
}

// Confirmation is the RFC 7800 confirmation claim.
type Confirmation struct {
	JWK *jwk.Key `json:"jwk,omitempty"`
}

// NodeKey returns the Ed25519 public key in the "cnf" claim.
func (c *Claims) NodeKey() (ed25519.PublicKey, error) {
	if c.Confirmation == nil || c.Confirmation.JWK == nil {
		return nil, fmt.Errorf("token has no cnf.jwk claim naming the node key")
	}
	if c.Confirmation.JWK.Kty != "OKP" {
		return nil, fmt.Errorf("token cnf.jwk has key type %q; node keys are OKP Ed25519", c.Confirmation.JWK.Kty)
	}

	pub, err := c.Confirmation.JWK.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("token cnf.jwk: %w", err)
	}
	return pub.(ed25519.PublicKey), nil
}

// AllowsService reports whether the identity may register service name.
func (c *Claims) AllowsService(name string) bool {
	return MatchAny(c.Services, name)
}

// AllowsTopic reports whether the identity may subscribe to topic.
func (c *Claims) AllowsTopic(topic string) bool {
	return MatchAny(c.Topics, topic)
}

// MatchAny reports whether name matches one of the patterns: an exact name,
// or a prefix followed by "*". A lone "*" matches every name. An empty name
// matches nothing.
func MatchAny(patterns []string, name string) bool {
	if name == "" {
		return false
	}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// CheckPatterns validates service or topic patterns: none empty, and "*"
// only as the last character.
func CheckPatterns(claim string, patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("%s: empty pattern", claim)
		}
		if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
			return fmt.Errorf("%s: pattern %q has '*' before its end; only a trailing '*' is allowed", claim, p)
		}
	}
	return nil
}
