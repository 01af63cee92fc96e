// Signet creates the keys and identity tokens of signet-signed go-micro
// services, and audits and cleans the registry they use.
//
// Usage:
//
//	signet keygen -o FILE [-pub FILE]
//	signet issue -key FILE (-node-pub FILE | -node-key FILE) -sub NAME
//	             -services LIST [-topics LIST] [-aud LIST] [-iss NAME]
//	             [-lifetime DURATION] [-kid ID] [-o FILE [-force]]
//	signet inspect -bundle FILE [-aud LIST] [-iss NAME] [-alg LIST]
//	               [-revocations FILE] [-json] TOKEN_FILE | -
//	signet bundle [-o FILE [-force]] [-kid LIST] KEY_FILE...
//	signet audit [-json] [-service LIST]
//	signet purge [-yes [-force]] [-service LIST]
//
// keygen writes an Ed25519 private key as PEM PKCS#8, the format of
// `openssl genpkey -algorithm ed25519`, with mode 0600, and never
// overwrites a file. It prints the public key's RFC 7638 thumbprint, the
// key id that a trust bundle of PEM keys assigns.
//
// issue signs an identity token for a node's public key with the
// issuer's key: the workload name ("sub"), the service names and broker
// topics it may register, and the node key in the "cnf" claim. The token
// file gets mode 0600 and is replaced, atomically, only with -force.
//
// inspect prints a token's header and claims, never the whole token, and
// verifies it against a trust bundle as a service would, ending with
// "valid: yes" or "valid: no (REASON: ERROR)".
//
// bundle builds a JWK Set from PEM public keys or other JWK Sets, so that
// an old and a new issuer key can be trusted side by side during rotation.
//
// audit and purge connect to the live registry with the services'
// environment (MICRO_REGISTRY, MICRO_REGISTRY_ADDRESS, the TLS and
// credential variables, MICRO_REGISTRY_TRUST_BUNDLE and the other
// verification variables), look every service up without signet's
// filtering and verify each node. audit prints a table, or JSON lines with
// -json. purge lists the failing nodes, and with -yes deregisters them. It
// verifies each one again right before its removal, and it never
// deregisters a node id that a verified node also has.
//
// Exit status: 0 on success, 1 when a token or a registry node fails
// verification (or, for purge, failing nodes remain), 2 on a usage error
// or any other failure.
//
// Run "signet help COMMAND" for the details, flags and examples of each
// command.
package main
