// Package verify checks signet node records against a trust bundle.
//
// A [Verifier] accepts a node only when all of these hold: the node carries
// a well-formed signed record; its identity token is a JWT signed with an
// allowed algorithm by a key in the trust bundle, for the configured
// audience, within its validity window, and neither the token id ("jti")
// nor the issuer key id ("kid") is revoked; the token allows the service
// name (and, for broker subscriber nodes, the topic); the record's own
// validity window contains the current time and ends no later than the
// token's; and the record signature, made with the key in the token's
// "cnf" claim, covers the node exactly as the registry returned it. Every
// rejection wraps one sentinel error, so callers can test the reason with
// errors.Is.
//
// Results are cached, so verifying an unchanged record again costs a map
// lookup and a comparison, not a signature check.
package verify
