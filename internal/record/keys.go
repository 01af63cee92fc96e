package record

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Metadata keys that signet adds to every signed node. They use only
// [A-Za-z0-9_-], which Consul requires of Service.Meta keys.
const (
	// Prefix starts every key that signet owns. Keys with this prefix are
	// removed from a node before signing and are never covered by the
	// signature themselves.
	Prefix = "signet-"

	KeyVersion         = Prefix + "v"
	KeySignature       = Prefix + "sig"
	KeyIssuedAt        = Prefix + "iat"
	KeyExpiry          = Prefix + "exp"
	KeyEndpointsDigest = Prefix + "eps"
	KeyMetadataDigest  = Prefix + "smd"
	KeyTokenParts      = Prefix + "tokn"
	KeyTokenPartPrefix = Prefix + "tok-"
)

const (
	// FormatVersion is the value of [KeyVersion] in records of this format.
	FormatVersion = "1"

	// MaxValueLen is the longest metadata value that signet writes, in
	// bytes. Consul rejects Service.Meta values longer than 512 characters.
	MaxValueLen = 512

	// MaxTokenParts is the largest number of [MaxValueLen] pieces that an
	// identity token may be split into, so tokens up to 4096 bytes fit.
	MaxTokenParts = 8

	// FixedKeys is the number of signet keys in every record besides the
	// token parts.
	FixedKeys = 7
)

// Limits on the metadata of a node that a verifier is willing to process.
// They bound the work and memory an attacker can cause with one record, and
// they are far above what any backend lets a genuine record carry.
const (
	MaxMetadataPairs = 256
	MaxMetadataBytes = 64 << 10
)

// ErrUnsigned reports a node whose metadata has no signet key at all.
var ErrUnsigned = errors.New("node is not signed")

// ErrMalformed reports signet metadata that cannot be decoded.
var ErrMalformed = errors.New("malformed signed record")

// IsOwnKey reports whether a metadata key belongs to signet.
func IsOwnKey(key string) bool {
	return strings.HasPrefix(key, Prefix)
}

// TokenPartKey returns the metadata key of token part i.
func TokenPartKey(i int) string {
	return KeyTokenPartPrefix + strconv.Itoa(i)
}

// SplitToken cuts token into pieces of at most [MaxValueLen] bytes.
func SplitToken(token string) ([]string, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty identity token", ErrMalformed)
	}

	n := (len(token) + MaxValueLen - 1) / MaxValueLen
	if n > MaxTokenParts {
		return nil, fmt.Errorf("identity token is %d bytes, longer than the %d bytes that fit in %d metadata values of %d characters; issue a shorter token (fewer service patterns)",
			len(token), MaxTokenParts*MaxValueLen, MaxTokenParts, MaxValueLen)
	}

	parts := make([]string, 0, n)
	for len(token) > MaxValueLen {
		parts = append(parts, token[:MaxValueLen])
		token = token[MaxValueLen:]
	}
	return append(parts, token), nil
}
