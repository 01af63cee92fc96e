package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"testing"

	"go-micro.dev/v4/registry"
)

// decodeCanonical parses the encoding AppendCanonical writes. Its
// existence shows the encoding is injective: every encoding decodes to
// exactly one Fields value.
func decodeCanonical(b []byte) (*Fields, error) {
	r := bytes.NewReader(b)
	str := func() (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return "", err
		}
		if n > uint64(r.Len()) {
			return "", errors.New("string length past the end")
		}
		s := make([]byte, n)
		_, err = r.Read(s)
		return string(s), err
	}

	label, err := str()
	if err != nil || label != SignatureLabel {
		return nil, errors.New("missing signature label")
	}
	f := &Fields{}
	for _, dst := range []*string{&f.Service, &f.Version, &f.NodeID, &f.Address} {
		if *dst, err = str(); err != nil {
			return nil, err
		}
	}

	count, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	f.Metadata = map[string]string{}
	prev := ""
	for i := uint64(0); i < count; i++ {
		k, err := str()
		if err != nil {
			return nil, err
		}
		v, err := str()
		if err != nil {
			return nil, err
		}
		if i > 0 && k <= prev {
			return nil, errors.New("metadata keys not sorted and unique")
		}
		prev = k
		f.Metadata[k] = v
	}

	var times [16]byte
	for _, dst := range [][]byte{f.EndpointsDigest[:], f.MetadataDigest[:], times[:], f.TokenDigest[:]} {
		if n, _ := r.Read(dst); n != len(dst) {
			return nil, errors.New("short fixed-size field")
		}
	}
	f.IssuedAt = int64(binary.BigEndian.Uint64(times[:8]))
	f.Expiry = int64(binary.BigEndian.Uint64(times[8:]))
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return f, nil
}

// normalized returns f with the keys the signature skips removed and a
// nil metadata map made empty.
func normalized(f Fields) Fields {
	md := map[string]string{}
	for k, v := range f.Metadata {
		if !IsOwnKey(k) {
			md[k] = v
		}
	}
	f.Metadata = md
	return f
}

func fieldsEqual(a, b Fields) bool {
	a, b = normalized(a), normalized(b)
	return a.Service == b.Service && a.Version == b.Version && a.NodeID == b.NodeID && a.Address == b.Address &&
		maps.Equal(a.Metadata, b.Metadata) && a.EndpointsDigest == b.EndpointsDigest && a.MetadataDigest == b.MetadataDigest &&
		a.IssuedAt == b.IssuedAt && a.Expiry == b.Expiry && a.TokenDigest == b.TokenDigest
}

func TestAppendCanonicalBoundaries(t *testing.T) {
	// Pairs that an encoding without length prefixes or counts would
	// confuse.
	base := Fields{Service: "greeter", Version: "1", NodeID: "n1", Address: "10.0.0.1:80", IssuedAt: 1, Expiry: 2}
	with := func(edit func(f *Fields)) Fields {
		f := base
		f.Metadata = map[string]string{}
		edit(&f)
		return f
	}
	pairs := [][2]Fields{
		{with(func(f *Fields) { f.Service, f.Version = "ab", "c" }), with(func(f *Fields) { f.Service, f.Version = "a", "bc" })},
		{with(func(f *Fields) { f.NodeID, f.Address = "n1", "10.0.0.1:80" }), with(func(f *Fields) { f.NodeID, f.Address = "n110.0.0.1:80", "" })},
		{with(func(f *Fields) { f.Metadata["a"] = "bc" }), with(func(f *Fields) { f.Metadata["ab"] = "c" })},
		{with(func(f *Fields) { f.Metadata["a"] = "" }), with(func(f *Fields) {})},
		{with(func(f *Fields) { f.Metadata["a"], f.Metadata["b"] = "1", "2" }), with(func(f *Fields) { f.Metadata["a"] = "1\x01b\x012" })},
		{with(func(f *Fields) { f.Address = "" }), with(func(f *Fields) { f.Metadata[""] = "" })},
		{with(func(f *Fields) { f.IssuedAt, f.Expiry = 1, 2 }), with(func(f *Fields) { f.IssuedAt, f.Expiry = 2, 1 })},
		{with(func(f *Fields) { f.IssuedAt = -1 }), with(func(f *Fields) { f.IssuedAt = 1 << 62 })},
		{with(func(f *Fields) { f.EndpointsDigest[0] = 1 }), with(func(f *Fields) { f.MetadataDigest[0] = 1 })},
		{with(func(f *Fields) { f.TokenDigest[31] = 1 }), with(func(f *Fields) {})},
	}
	for i, p := range pairs {
		a, b := p[0].AppendCanonical(nil), p[1].AppendCanonical(nil)
		if bytes.Equal(a, b) {
			t.Errorf("pair %d: different fields encode to the same bytes %q", i, a)
		}
		for j, f := range p {
			got, err := decodeCanonical(f.AppendCanonical(nil))
			if err != nil || !fieldsEqual(*got, f) {
				t.Errorf("pair %d/%d: decode(encode(f)) = %+v, %v; want %+v", i, j, got, err, f)
			}
		}
	}
}

func TestAppendCanonicalSkipsOwnKeys(t *testing.T) {
	a := Fields{Service: "s", Metadata: map[string]string{"x": "1"}}
	b := Fields{Service: "s", Metadata: map[string]string{"x": "1", KeySignature: "sig", TokenPartKey(0): "t"}}
	if !bytes.Equal(a.AppendCanonical(nil), b.AppendCanonical(nil)) {
		t.Fatal("signet's own keys changed the canonical encoding")
	}
}

func TestAppendCanonicalAppends(t *testing.T) {
	f := Fields{Service: "s", Metadata: map[string]string{"b": "2", "a": "1"}}
	prefix := []byte("prefix")
	got := f.AppendCanonical(append([]byte(nil), prefix...))
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], f.AppendCanonical(nil)) {
		t.Fatal("AppendCanonical does not append to its argument")
	}
	for range 20 {
		if !bytes.Equal(f.AppendCanonical(nil), got[len(prefix):]) {
			t.Fatal("AppendCanonical depends on map iteration order")
		}
	}
}

func TestDigestEndpointsOrderAndNil(t *testing.T) {
	e1 := &registry.Endpoint{Name: "A.One", Request: &registry.Value{Name: "req", Type: "Req"}, Metadata: map[string]string{"k": "v", "j": "w"}}
	e2 := &registry.Endpoint{Name: "A.Two"}

	if DigestEndpoints([]*registry.Endpoint{e1, e2}) != DigestEndpoints([]*registry.Endpoint{e2, e1}) {
		t.Error("endpoint order changes the digest")
	}
	if DigestEndpoints(nil) != DigestEndpoints([]*registry.Endpoint{}) {
		t.Error("nil and empty endpoint lists digest differently")
	}
	if DigestEndpoints([]*registry.Endpoint{e2, nil}) != DigestEndpoints([]*registry.Endpoint{e2}) {
		t.Error("a nil endpoint changes the digest")
	}
	if DigestEndpoints([]*registry.Endpoint{{Name: "x"}}) != DigestEndpoints([]*registry.Endpoint{{Name: "x", Metadata: map[string]string{}}}) {
		t.Error("nil and empty endpoint metadata digest differently")
	}

	// go-micro's memory registry returns an empty Value where the
	// registered endpoint had none (a subscriber's response).
	if DigestEndpoints([]*registry.Endpoint{{Name: "x"}}) != DigestEndpoints([]*registry.Endpoint{{Name: "x", Request: &registry.Value{}, Response: &registry.Value{}}}) {
		t.Error("a nil value and an empty value digest differently")
	}

	distinct := [][]*registry.Endpoint{
		{e1},
		{e2},
		{e1, e2},
		{{Name: "A.One"}},
		{{Name: "A.One", Request: &registry.Value{Name: "req"}}},
		{{Name: "A.One", Response: &registry.Value{Name: "req"}}},
		{{Name: "A.One", Request: &registry.Value{Name: "req", Values: []*registry.Value{{Name: "f"}}}}},
		{{Name: "A.One", Request: &registry.Value{Name: "req", Values: []*registry.Value{{Name: "f"}, {Name: "g"}}}}},
		{{Name: "A.One", Request: &registry.Value{Name: "req", Values: []*registry.Value{{Name: "g"}, {Name: "f"}}}}},
		{{Name: "A.One", Request: &registry.Value{Name: "req", Values: []*registry.Value{{Name: "f", Values: []*registry.Value{{Name: "g"}}}}}}},
		{{Name: "A.One", Metadata: map[string]string{"stream": "true"}}},
		{{Name: "A.One"}, {Name: "A.One"}},
	}
	seen := map[[32]byte]int{}
	for i, eps := range distinct {
		d := DigestEndpoints(eps)
		if j, ok := seen[d]; ok {
			t.Errorf("endpoint lists %d and %d digest the same", j, i)
		}
		seen[d] = i
	}
}

func TestDigestMetadata(t *testing.T) {
	if DigestMetadata(nil) != DigestMetadata(map[string]string{}) {
		t.Error("nil and empty service metadata digest differently")
	}
	a := DigestMetadata(map[string]string{"a": "bc"})
	b := DigestMetadata(map[string]string{"ab": "c"})
	if a == b {
		t.Error("metadata boundaries are ambiguous")
	}
	// Service metadata is user data: signet's prefix is not skipped.
	if DigestMetadata(map[string]string{KeySignature: "x"}) == DigestMetadata(nil) {
		t.Error("a service metadata key with signet's prefix is ignored")
	}
}
