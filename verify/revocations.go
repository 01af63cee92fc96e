package verify

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Revocations is an immutable set of revoked token ids ("jti") and issuer
// key ids ("kid"). A record whose token has a revoked id, or was issued
// with a revoked key, is rejected with [ErrRevoked].
type Revocations struct {
	tokenIDs map[string]bool
	keyIDs   map[string]bool
}

// NewRevocations returns a revocation set.
func NewRevocations(tokenIDs, keyIDs []string) *Revocations {
	r := &Revocations{tokenIDs: map[string]bool{}, keyIDs: map[string]bool{}}
	for _, id := range tokenIDs {
		r.tokenIDs[id] = true
	}
	for _, id := range keyIDs {
		r.keyIDs[id] = true
	}
	return r
}

// ParseRevocations decodes a revocation list: one entry a line, "jti ID"
// to revoke a token or "kid ID" to revoke an issuer key. Blank lines and
// lines starting with '#' are ignored.
func ParseRevocations(data []byte) (*Revocations, error) {
	var jtis, kids []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}

		kind, id, ok := strings.Cut(line, " ")
		id = strings.TrimSpace(id)
		if !ok || id == "" || strings.ContainsAny(id, " \t") {
			return nil, fmt.Errorf("verify: revocation list line %d is %.64q; expected \"jti <token id>\" or \"kid <key id>\"", n, line)
		}
		switch kind {
		case "jti":
			jtis = append(jtis, id)
		case "kid":
			kids = append(kids, id)
		default:
			return nil, fmt.Errorf("verify: revocation list line %d starts with %.16q; expected \"jti\" or \"kid\"", n, kind)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("verify: reading revocation list: %w", err)
	}
	return NewRevocations(jtis, kids), nil
}

// Revoked reports whether a token id or an issuer key id is revoked.
func (r *Revocations) Revoked(tokenID, keyID string) bool {
	if r == nil {
		return false
	}
	return r.tokenIDs[tokenID] || r.keyIDs[keyID]
}

// Len returns the number of entries.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.tokenIDs) + len(r.keyIDs)
}

// Revocations returns r itself, so a fixed set is a [RevocationSource].
func (r *Revocations) Revocations() (*Revocations, error) { return r, nil }

// RevocationSource hands out the current revocation set.
type RevocationSource interface {
	Revocations() (*Revocations, error)
}
