// Package record defines signet's wire format: the node metadata keys that
// carry a signed record, the canonical byte encoding that the record
// signature covers, and the canonical form of node addresses.
//
// The format is versioned. A verifier accepts only [FormatVersion] records,
// and every signature is made over bytes that start with [SignatureLabel], so
// a signature made for another purpose, or by another format version, never
// verifies as a record signature.
package record
