package verify

import (
	"errors"
	"fmt"

	"github.com/signet-micro/signet/internal/record"
)

// Rejection reasons. Every error a [Verifier] returns for a node wraps
// exactly one of them.
var (
	// ErrUnsigned: the node has no signet metadata.
	ErrUnsigned = record.ErrUnsigned
	// ErrMalformed: the signet metadata cannot be decoded.
	ErrMalformed = record.ErrMalformed
	// ErrBadSignature: the record signature does not match the node, so
	// the service, version, node id, address or metadata was changed.
	ErrBadSignature = errors.New("record signature does not match the node")
	// ErrRecordExpired: the record's validity window has ended.
	ErrRecordExpired = errors.New("record expired")
	// ErrRecordNotYetValid: the record was issued in the future.
	ErrRecordNotYetValid = errors.New("record not yet valid")
	// ErrRecordOutlivesToken: the record claims a validity past its token's.
	ErrRecordOutlivesToken = errors.New("record outlives its identity token")
	// ErrRecordLifetime: the record's validity window is longer than the
	// verifier accepts, which would widen the window for replaying it.
	ErrRecordLifetime = errors.New("record lifetime longer than allowed")
	// ErrTokenMalformed: the identity token is not a well-formed JWT or
	// lacks a required claim.
	ErrTokenMalformed = errors.New("identity token malformed")
	// ErrTokenSignature: the token's signature does not verify with the
	// issuer key its "kid" names.
	ErrTokenSignature = errors.New("identity token signature invalid")
	// ErrAlgorithmNotAllowed: the token's "alg" is not on the allow-list
	// or does not fit the issuer key.
	ErrAlgorithmNotAllowed = errors.New("identity token algorithm not allowed")
	// ErrUnknownKeyID: the token's "kid" names no key in the trust bundle.
	ErrUnknownKeyID = errors.New("identity token issuer key not trusted")
	// ErrTokenExpired: the token's "exp" has passed.
	ErrTokenExpired = errors.New("identity token expired")
	// ErrTokenNotYetValid: the token's "nbf" or "iat" is in the future.
	ErrTokenNotYetValid = errors.New("identity token not yet valid")
	// ErrAudience: the token is not for the configured audience.
	ErrAudience = errors.New("identity token audience not accepted")
	// ErrIssuer: the token's "iss" is not the configured issuer.
	ErrIssuer = errors.New("identity token issuer not accepted")
	// ErrConfirmation: the token's "cnf" claim is missing or names no
	// Ed25519 key.
	ErrConfirmation = errors.New("identity token has no usable cnf key")
	// ErrNotAllowed: the identity may not serve this service name or topic.
	ErrNotAllowed = errors.New("identity not allowed to serve this service")
	// ErrRevoked: the token id or the issuer key id is revoked.
	ErrRevoked = errors.New("identity revoked")
	// ErrNoTrustBundle: no trust bundle is configured, so nothing verifies.
	ErrNoTrustBundle = errors.New("no trust bundle configured")
)

var reasons = []struct {
	err  error
	code string
}{
	{ErrUnsigned, "unsigned"},
	{ErrMalformed, "malformed"},
	{ErrBadSignature, "bad-signature"},
	{ErrRecordExpired, "record-expired"},
	{ErrRecordNotYetValid, "record-not-yet-valid"},
	{ErrRecordOutlivesToken, "record-outlives-token"},
	{ErrRecordLifetime, "record-lifetime-too-long"},
	{ErrTokenMalformed, "token-malformed"},
	{ErrTokenSignature, "token-bad-signature"},
	{ErrAlgorithmNotAllowed, "algorithm-not-allowed"},
	{ErrUnknownKeyID, "unknown-issuer-key"},
	{ErrTokenExpired, "token-expired"},
	{ErrTokenNotYetValid, "token-not-yet-valid"},
	{ErrAudience, "wrong-audience"},
	{ErrIssuer, "wrong-issuer"},
	{ErrConfirmation, "no-cnf-key"},
	{ErrNotAllowed, "not-allowed"},
	{ErrRevoked, "revoked"},
	{ErrNoTrustBundle, "no-trust-bundle"},
}

// Reasons lists the short codes [Reason] returns, for metrics labels.
func Reasons() []string {
	codes := make([]string, len(reasons))
	for i, r := range reasons {
		codes[i] = r.code
	}
	return codes
}

// Reason returns a short, stable code for the rejection reason err wraps,
// such as "unsigned" or "bad-signature", or "error" for any other error.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "error"
}

// Rejection describes a node that failed verification. Its fields hold
// identifiers only, never a key or a whole token.
type Rejection struct {
	Service string
	Version string
	NodeID  string
	Address string

	// KeyID and TokenID are the token's "kid" and "jti" when the token
	// could be decoded, and empty otherwise.
	KeyID   string
	TokenID string
	Subject string

	// Err wraps the sentinel reason and describes what was wrong.
	Err error
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("verify: service %q version %q node %q at %q rejected: %v", r.Service, r.Version, r.NodeID, r.Address, r.Err)
}

func (r *Rejection) Unwrap() error { return r.Err }

func reject(sentinel error, format string, args ...any) error {
	if format == "" {
		return sentinel
	}
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
