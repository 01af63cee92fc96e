package record

import (
	"encoding/base64"
	"fmt"
	"strconv"
)

// Signed is the signet part of a node's metadata.
type Signed struct {
	Signature       []byte
	IssuedAt        int64
	Expiry          int64
	EndpointsDigest [32]byte
	MetadataDigest  [32]byte
	Token           string
}

var b64 = base64.RawURLEncoding.Strict()

// Metadata returns the signet keys and values that carry s.
func (s *Signed) Metadata() (map[string]string, error) {
	parts, err := SplitToken(s.Token)
	if err != nil {
		return nil, err
	}

	md := make(map[string]string, FixedKeys+len(parts))
	md[KeyVersion] = FormatVersion
	md[KeySignature] = b64.EncodeToString(s.Signature)
	md[KeyIssuedAt] = strconv.FormatInt(s.IssuedAt, 10)
	md[KeyExpiry] = strconv.FormatInt(s.Expiry, 10)
	md[KeyEndpointsDigest] = b64.EncodeToString(s.EndpointsDigest[:])
	md[KeyMetadataDigest] = b64.EncodeToString(s.MetadataDigest[:])
	md[KeyTokenParts] = strconv.Itoa(len(parts))
	for i, p := range parts {
		md[TokenPartKey(i)] = p
	}
	return md, nil
}

// Parse decodes the signet keys of a node's metadata. It returns
// [ErrUnsigned] when there are none, and an error wrapping [ErrMalformed]
// that names the key when any is missing, duplicated in another form,
// oversized or not decodable. The node's own keys are left for the caller
// to pass to [Fields].
func Parse(md map[string]string) (*Signed, error) {
	if err := checkSize(md); err != nil {
		return nil, err
	}

	own := 0
	for k := range md {
		if IsOwnKey(k) {
			own++
		}
	}
	if own == 0 {
		return nil, ErrUnsigned
	}

	if v, ok := md[KeyVersion]; !ok {
		return nil, malformed("key %s is missing", KeyVersion)
	} else if v != FormatVersion {
		return nil, malformed("%s is %.16q, and this verifier reads only format %s", KeyVersion, v, FormatVersion)
	}

	s := &Signed{}
	var err error
	if s.Signature, err = decodeFixed(md, KeySignature, 64); err != nil {
		return nil, err
	}
	if s.IssuedAt, err = decodeTime(md, KeyIssuedAt); err != nil {
		return nil, err
	}
	if s.Expiry, err = decodeTime(md, KeyExpiry); err != nil {
		return nil, err
	}
	if err := decodeDigest(md, KeyEndpointsDigest, &s.EndpointsDigest); err != nil {
		return nil, err
	}
	if err := decodeDigest(md, KeyMetadataDigest, &s.MetadataDigest); err != nil {
		return nil, err
	}
	if s.Token, err = joinToken(md); err != nil {
		return nil, err
	}

	if want := FixedKeys + tokenPartCount(md); own != want {
		return nil, malformed("record has %d %s keys, and a record with this token has %d; remove the unknown keys", own, Prefix, want)
	}
	return s, nil
}

func checkSize(md map[string]string) error {
	if len(md) > MaxMetadataPairs {
		return malformed("node metadata has %d pairs, more than the %d a verifier processes", len(md), MaxMetadataPairs)
	}

	total := 0
	for k, v := range md {
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return malformed("node metadata is %d bytes, more than the %d a verifier processes", total, MaxMetadataBytes)
	}
	return nil
}

func tokenPartCount(md map[string]string) int {
	n, _ := strconv.Atoi(md[KeyTokenParts])
	return n
}

func joinToken(md map[string]string) (string, error) {
	v, ok := md[KeyTokenParts]
	if !ok {
		return "", malformed("key %s is missing", KeyTokenParts)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxTokenParts || strconv.Itoa(n) != v {
		return "", malformed("%s is %.16q, not a count from 1 to %d", KeyTokenParts, v, MaxTokenParts)
	}

	size := 0
	for i := 0; i < n; i++ {
		p, ok := md[TokenPartKey(i)]
		if !ok {
			return "", malformed("token part %s is missing", TokenPartKey(i))
		}
		if p == "" || len(p) > MaxValueLen || (i < n-1 && len(p) != MaxValueLen) {
			return "", malformed("token part %s is %d bytes; every part but the last is %d bytes and none is empty", TokenPartKey(i), len(p), MaxValueLen)
		}
		size += len(p)
	}

	buf := make([]byte, 0, size)
	for i := 0; i < n; i++ {
		buf = append(buf, md[TokenPartKey(i)]...)
	}
	return string(buf), nil
}

func decodeFixed(md map[string]string, key string, size int) ([]byte, error) {
	v, ok := md[key]
	if !ok {
		return nil, malformed("key %s is missing", key)
	}
	if b64.EncodedLen(size) != len(v) {
		return nil, malformed("%s is %d characters, and a %d-byte value is %d", key, len(v), size, b64.EncodedLen(size))
	}
	b, err := b64.DecodeString(v)
	if err != nil {
		return nil, malformed("%s is not unpadded base64url: %v", key, err)
	}
	if len(b) != size {
		// The decoder skips '\r' and '\n', so a value of the right length
		// can still decode to fewer bytes.
		return nil, malformed("%s decodes to %d bytes, not %d; it contains line breaks", key, len(b), size)
	}
	return b, nil
}

func decodeDigest(md map[string]string, key string, out *[32]byte) error {
	b, err := decodeFixed(md, key, 32)
	if err != nil {
		return err
	}
	copy(out[:], b)
	return nil
}

// maxUnixSeconds is the end of year 9999 UTC. Larger values overflow
// time.Unix and would compare as dates in the past.
const maxUnixSeconds = 253402300799

func decodeTime(md map[string]string, key string) (int64, error) {
	v, ok := md[key]
	if !ok {
		return 0, malformed("key %s is missing", key)
	}
	t, err := strconv.ParseInt(v, 10, 64)
	if err != nil || t <= 0 || t > maxUnixSeconds || strconv.FormatInt(t, 10) != v {
		return 0, malformed("%s is %.24q, not Unix seconds in decimal up to %d", key, v, maxUnixSeconds)
	}
	return t, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
