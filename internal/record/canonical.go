package record

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"

	"go-micro.dev/v4/registry"
)

// Domain-separation labels. Each hashed or signed byte string starts with
// one of them, so bytes built for one purpose never match another.
const (
	SignatureLabel       = "signet-micro/node-record/v1"
	endpointsDigestLabel = "signet-micro/endpoints/v1"
	metadataDigestLabel  = "signet-micro/service-metadata/v1"
)

// Fields lists everything a record signature covers.
type Fields struct {
	Service string
	Version string
	NodeID  string

	// Address is the node address in the form [CanonicalAddress] returns.
	Address string

	// Metadata is the node metadata. Keys for which [IsOwnKey] is true are
	// skipped, so a node's full metadata can be passed as it is.
	Metadata map[string]string

	EndpointsDigest [32]byte
	MetadataDigest  [32]byte
	IssuedAt        int64
	Expiry          int64
	TokenDigest     [32]byte
}

// AppendCanonical appends the canonical encoding of f to b: the signature
// label, then each field as a length-prefixed string, the metadata as a
// count followed by its pairs sorted by key, the digests and the two times as
// 8-byte big-endian Unix seconds. Every field has an unambiguous boundary, so
// two different Fields values never encode to the same bytes.
func (f *Fields) AppendCanonical(b []byte) []byte {
	b = appendString(b, SignatureLabel)
	b = appendString(b, f.Service)
	b = appendString(b, f.Version)
	b = appendString(b, f.NodeID)
	b = appendString(b, f.Address)
	b = appendMetadata(b, f.Metadata, true)
	b = append(b, f.EndpointsDigest[:]...)
	b = append(b, f.MetadataDigest[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(f.IssuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(f.Expiry))
	return append(b, f.TokenDigest[:]...)
}

// DigestEndpoints hashes a service's endpoints in an order-independent
// canonical form: endpoints sorted by their encoding, metadata sorted by key,
// request and response values in their declared order. A nil value and an
// empty one (no name, type or values) hash the same, as do a nil and an
// empty slice or map, because backends do not preserve that difference.
// go-micro's memory registry returns an empty Value for a nil one, and JSON
// decodes an omitted map as nil.
func DigestEndpoints(endpoints []*registry.Endpoint) [32]byte {
	encoded := make([][]byte, 0, len(endpoints))
	for _, e := range endpoints {
		if e == nil {
			continue
		}
		var b []byte
		b = appendString(b, e.Name)
		b = appendMetadata(b, e.Metadata, false)
		b = appendValue(b, e.Request)
		b = appendValue(b, e.Response)
		encoded = append(encoded, b)
	}
	sort.Slice(encoded, func(i, j int) bool { return string(encoded[i]) < string(encoded[j]) })

	h := sha256.New()
	h.Write(appendString(nil, endpointsDigestLabel))
	var count [binary.MaxVarintLen64]byte
	h.Write(count[:binary.PutUvarint(count[:], uint64(len(encoded)))])
	for _, b := range encoded {
		h.Write(appendString(nil, string(b)))
	}

	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// DigestMetadata hashes service-level metadata with its keys sorted.
func DigestMetadata(md map[string]string) [32]byte {
	b := appendString(nil, metadataDigestLabel)
	b = appendMetadata(b, md, false)
	return sha256.Sum256(b)
}

// DigestToken hashes an identity token.
func DigestToken(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}

func appendValue(b []byte, v *registry.Value) []byte {
	if v == nil || (v.Name == "" && v.Type == "" && len(v.Values) == 0) {
		return append(b, 0)
	}

	b = append(b, 1)
	b = appendString(b, v.Name)
	b = appendString(b, v.Type)
	b = binary.AppendUvarint(b, uint64(len(v.Values)))
	for _, child := range v.Values {
		b = appendValue(b, child)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendMetadata(b []byte, md map[string]string, skipOwn bool) []byte {
	keys := make([]string, 0, len(md))
	for k := range md {
		if skipOwn && IsOwnKey(k) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)

	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, md[k])
	}
	return b
}
