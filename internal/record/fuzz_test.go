package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// metadataFromBytes turns fuzz input into node metadata: pairs separated
// by '\n', key and value by the first '='. In a value, "~NNN" (three
// decimal digits) repeats the character before it NNN more times, so that
// 512-byte token parts take a few bytes of input and the fuzzer's
// minimization stays fast.
func metadataFromBytes(b []byte) map[string]string {
	md := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		md[k] = expandRuns(v)
	}
	return md
}

func expandRuns(v string) string {
	if !strings.Contains(v, "~") {
		return v
	}
	var out strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '~' && i > 0 && i+3 < len(v) && isDigits(v[i+1:i+4]) {
			n, _ := strconv.Atoi(v[i+1 : i+4])
			out.WriteString(strings.Repeat(v[i-1:i], n))
			i += 3
			continue
		}
		out.WriteByte(v[i])
	}
	return out.String()
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// metadataToBytes is the inverse of metadataFromBytes, writing runs of
// more than 8 equal characters in the "~NNN" form.
func metadataToBytes(md map[string]string) []byte {
	var b bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(md)) {
		b.WriteString(k + "=" + compressRuns(md[k]) + "\n")
	}
	return b.Bytes()
}

func compressRuns(v string) string {
	var out strings.Builder
	for i := 0; i < len(v); {
		j := i + 1
		for j < len(v) && v[j] == v[i] && j-i <= 999 {
			j++
		}
		if j-i > 8 {
			fmt.Fprintf(&out, "%c~%03d", v[i], j-i-1)
		} else {
			out.WriteString(v[i:j])
		}
		i = j
	}
	return out.String()
}

func FuzzParse(f *testing.F) {
	valid := validMetadata(f, 600)
	f.Add(metadataToBytes(valid))
	f.Add(metadataToBytes(validMetadata(f, 1500)))
	f.Add([]byte("transport=http\nserver=mucp\n"))
	f.Add([]byte(KeyVersion + "=1\n"))
	f.Add([]byte(KeyVersion + "=2\n"))
	for _, tc := range hostileCases() {
		if strings.HasPrefix(tc.name, "big-") || strings.HasPrefix(tc.name, "many-") || strings.Contains(tc.name, "over-limit") {
			continue // the fuzzer's inputs stay small; the unit tests cover these
		}
		md := validMetadata(f, 600)
		tc.mutate(md)
		f.Add(metadataToBytes(md))
	}

	if got := metadataFromBytes(metadataToBytes(valid)); !maps.Equal(got, valid) {
		f.Fatal("metadataFromBytes(metadataToBytes(md)) differs from md")
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		md := metadataFromBytes(data)
		s, err := Parse(md)
		if err != nil {
			if s != nil {
				t.Fatal("Parse returned a record with its error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsigned) {
				t.Fatalf("Parse err = %v; want ErrMalformed or ErrUnsigned", err)
			}
			return
		}

		// A record that parses re-encodes to exactly its signet keys: the
		// wire form of a record is unique.
		own, err := s.Metadata()
		if err != nil {
			t.Fatalf("Metadata of a parsed record: %v", err)
		}
		for k, v := range md {
			if IsOwnKey(k) && own[k] != v {
				t.Fatalf("key %s is %q in the input and %q re-encoded", k, v, own[k])
			}
		}
		for k := range own {
			if _, ok := md[k]; !ok {
				t.Fatalf("re-encoded record has key %s that the input lacks", k)
			}
		}
	})
}

// fieldsFromBytes turns fuzz input into Fields: strings separated by 0x00
// for service, version, node id and address, then metadata pairs.
func fieldsFromBytes(b []byte, iat, exp int64, digest byte) Fields {
	parts := strings.Split(string(b), "\x00")
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	f := Fields{Service: parts[0], Version: parts[1], NodeID: parts[2], Address: parts[3], IssuedAt: iat, Expiry: exp}
	f.Metadata = map[string]string{}
	for i := 4; i+1 < len(parts); i += 2 {
		f.Metadata[parts[i]] = parts[i+1]
	}
	f.EndpointsDigest[0], f.MetadataDigest[1], f.TokenDigest[2] = digest, digest>>1, digest>>2
	return f
}

func FuzzAppendCanonical(f *testing.F) {
	f.Add([]byte("ab\x00c\x00n\x00a"), []byte("a\x00bc\x00n\x00a"), int64(1), int64(2), byte(0))
	f.Add([]byte("s\x00v\x00n\x00a\x00k\x00v"), []byte("s\x00v\x00n\x00a\x00kv\x00"), int64(1), int64(1), byte(1))
	f.Add([]byte("s\x00\x00\x00\x00"+KeySignature+"\x00x"), []byte("s\x00\x00\x00"), int64(0), int64(0), byte(2))
	f.Add([]byte("s\x00v\x00n\x00a\x00a\x001\x00b\x002"), []byte("s\x00v\x00n\x00a\x00a\x001\x01b\x012"), int64(-1), int64(1<<62), byte(3))

	f.Fuzz(func(t *testing.T, a, b []byte, t1, t2 int64, digest byte) {
		fa := fieldsFromBytes(a, t1, t2, digest)
		fb := fieldsFromBytes(b, t2, t1, digest^byte(len(b)))
		ea, eb := fa.AppendCanonical(nil), fb.AppendCanonical(nil)

		if bytes.Equal(ea, eb) != fieldsEqual(fa, fb) {
			t.Fatalf("encodings equal = %v, fields equal = %v\n a = %+v\n b = %+v", bytes.Equal(ea, eb), fieldsEqual(fa, fb), fa, fb)
		}
		got, err := decodeCanonical(ea)
		if err != nil {
			t.Fatalf("decoding the encoding of %+v: %v", fa, err)
		}
		if !fieldsEqual(*got, fa) {
			t.Fatalf("decode(encode(f)) = %+v, want %+v", got, fa)
		}
		if !bytes.HasPrefix(ea, binary.AppendUvarint(nil, uint64(len(SignatureLabel)))) {
			t.Fatal("encoding does not start with the signature label")
		}
	})
}

func FuzzCanonicalAddress(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "10.0.0.1:0", "10.0.0.1:8080", "[0:0::1]:80", "[::1]:8080", "::1", "[::1]",
		"[fe80::1%eth0]:80", "[::ffff:10.0.0.1]:80", "Greeter.SVC:9000", "host:", "host:080",
		"", ":80", "[]", "[]:80", "[[::1]]", "10.0.0.1:65536", "a:b:c", "[::1]:80:90", "%", "[%]",
		"0", "00", "[0]", "1.2.3", "01.2.3.4", "[01.2.3.4]:1", "1.2.3.4%eth0",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, address string) {
		canonical, err := CanonicalAddress(address)
		if err != nil {
			return
		}
		again, err := CanonicalAddress(canonical)
		if err != nil {
			t.Fatalf("CanonicalAddress(%q) = %q, which is itself rejected: %v", address, canonical, err)
		}
		if again != canonical {
			t.Fatalf("CanonicalAddress(%q) = %q, but CanonicalAddress(%q) = %q", address, canonical, canonical, again)
		}
		if _, port, err := net.SplitHostPort(canonical); err != nil || port == "" {
			t.Fatalf("CanonicalAddress(%q) = %q, which is not host:port", address, canonical)
		}
	})
}
