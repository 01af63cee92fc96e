// Package signing creates signet identities and signs node records.
//
// An identity is a JWT that a trusted issuer signs with [Issuer.Issue]. It
// names the workload ("sub"), the services it may register ("services",
// exact names or prefixes ending in "*"), the broker topics it may
// subscribe to ("topics"), and carries the node's Ed25519 public key in its
// "cnf" claim (RFC 7800), encoded as an RFC 8037 OKP JWK. The node proves
// possession of that key by signing each record with it: [Signer] turns a
// go-micro node into a record whose signature covers the service name and
// version, node id, canonical address, node metadata, digests of the
// service's endpoints and metadata, the validity window and the token.
//
// Keys load from PEM PKCS#8, the format `openssl genpkey -algorithm ed25519`
// writes, with [ParsePrivateKeyPEM].
package signing
