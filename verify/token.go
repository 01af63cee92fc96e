package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/signing"
)

type tokenEntry struct {
	identity *Identity
	err      error
	bundle   uint64
}

// VerifyToken verifies an identity token on its own: signature, algorithm,
// key id, audience, issuer, validity window, "cnf" key and revocation.
func (v *Verifier) VerifyToken(token string) (*Identity, error) {
	bundle, err := v.bundles.Bundle()
	if err != nil || bundle == nil {
		return nil, reject(ErrNoTrustBundle, "loading trust bundle: %v", err)
	}

	id, err := v.verifyToken(token, bundle, v.now())
	if err != nil {
		return id, err
	}

	revoked, err := v.currentRevocations()
	if err != nil {
		return id, reject(ErrRevoked, "loading revocation list: %v", err)
	}
	if revoked.Revoked(id.TokenID, id.KeyID) {
		return id, reject(ErrRevoked, "token %q or issuer key %q is on the revocation list", id.TokenID, id.KeyID)
	}
	return id, nil
}

// verifyToken returns the identity, or the error with whatever identity
// could be decoded for the log. Tokens are cached: a token that verified
// is only checked against the clock again, and one that failed for a
// reason the clock cannot change fails again at the cost of a lookup.
func (v *Verifier) verifyToken(token string, bundle *Bundle, now time.Time) (*Identity, error) {
	if e, ok := v.tokens.get(token, now); ok && e.bundle == bundle.generation {
		if e.err != nil {
			return e.identity, e.err
		}
		return e.identity, v.checkWindow(e.identity.IssuedAt, e.identity.Expiry, now, ErrTokenNotYetValid, ErrTokenExpired)
	}

	v.stats.tokenChecks.Add(1)
	id, err := v.parseToken(token, bundle)
	switch {
	case err == nil:
		v.tokens.put(token, &tokenEntry{identity: id, bundle: bundle.generation}, id.Expiry.Add(v.leeway))
	case errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenNotYetValid):
		// The clock decides these, so they are not remembered.
	default:
		v.tokens.put(token, &tokenEntry{identity: id, err: err, bundle: bundle.generation}, now.Add(time.Hour))
	}
	return id, err
}

func (v *Verifier) parseToken(token string, bundle *Bundle) (*Identity, error) {
	opts := []jwt.ParserOption{
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithAudience(v.audience...),
		jwt.WithStrictDecoding(),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}

	claims := &signing.Claims{}
	tok, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.issuerKey(t, bundle)
	})

	id := &Identity{Subject: claims.Subject, Issuer: claims.Issuer, TokenID: claims.ID, Services: claims.Services, Topics: claims.Topics}
	if tok != nil {
		id.KeyID, _ = tok.Header["kid"].(string)
	}
	if claims.IssuedAt != nil {
		id.IssuedAt = claims.IssuedAt.Time
	}
	if claims.NotBefore != nil && claims.NotBefore.After(id.IssuedAt) {
		id.IssuedAt = claims.NotBefore.Time
	}
	if claims.ExpiresAt != nil {
		id.Expiry = claims.ExpiresAt.Time
	}
	if err != nil {
		return id, classifyTokenError(err)
	}

	if claims.Subject == "" {
		return id, reject(ErrTokenMalformed, "token has no sub claim naming the workload")
	}
	if claims.ID == "" {
		return id, reject(ErrTokenMalformed, "token has no jti claim, so it could not be revoked; issue tokens with a jti")
	}
	if err := signing.CheckPatterns("services", claims.Services); err != nil {
		return id, reject(ErrTokenMalformed, "%v", err)
	}
	if err := signing.CheckPatterns("topics", claims.Topics); err != nil {
		return id, reject(ErrTokenMalformed, "%v", err)
	}
	if id.NodeKey, err = claims.NodeKey(); err != nil {
		return id, reject(ErrConfirmation, "%v", err)
	}
	return id, nil
}

func (v *Verifier) issuerKey(t *jwt.Token, bundle *Bundle) (any, error) {
	alg := t.Method.Alg()
	if !v.algorithms[alg] {
		return nil, reject(ErrAlgorithmNotAllowed, "token algorithm %.16q is not on the allow-list %q", alg, keys(v.algorithms))
	}

	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, reject(ErrUnknownKeyID, "token header has no kid naming its issuer key")
	}
	k, ok := bundle.Key(kid)
	if !ok {
		return nil, reject(ErrUnknownKeyID, "kid %.64q is not in the trust bundle", kid)
	}
	if k.Algorithm != "" && k.Algorithm != alg {
		return nil, reject(ErrAlgorithmNotAllowed, "issuer key %q is for %s, and the token uses %s", kid, k.Algorithm, alg)
	}
	if !algorithmFits(alg, k.Key) {
		return nil, reject(ErrAlgorithmNotAllowed, "token algorithm %s does not fit issuer key %q, a %s key", alg, kid, keyKind(k.Key))
	}
	return k.Key, nil
}

// classifyTokenError maps golang-jwt's errors to this package's reasons.
// Errors from issuerKey already carry one.
func classifyTokenError(err error) error {
	for _, own := range []error{ErrAlgorithmNotAllowed, ErrUnknownKeyID} {
		if errors.Is(err, own) {
			return err
		}
	}

	mapping := []struct{ from, to error }{
		{jwt.ErrTokenMalformed, ErrTokenMalformed},
		{jwt.ErrTokenUnverifiable, ErrAlgorithmNotAllowed},
		{jwt.ErrTokenSignatureInvalid, ErrTokenSignature},
		{jwt.ErrTokenRequiredClaimMissing, ErrTokenMalformed},
		{jwt.ErrTokenInvalidAudience, ErrAudience},
		{jwt.ErrTokenInvalidIssuer, ErrIssuer},
		{jwt.ErrTokenExpired, ErrTokenExpired},
		{jwt.ErrTokenNotValidYet, ErrTokenNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ErrTokenNotYetValid},
	}
	for _, m := range mapping {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %v", m.to, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrTokenMalformed, err)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for _, a := range SupportedAlgorithms {
		if m[a] {
			out = append(out, a)
		}
	}
	return out
}

func rejectionKey(message, signature []byte, bundle uint64) [32]byte {
	h := sha256.New()
	h.Write(message)
	h.Write(signature)
	var gen [8]byte
	binary.BigEndian.PutUint64(gen[:], bundle)
	h.Write(gen[:])

	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
