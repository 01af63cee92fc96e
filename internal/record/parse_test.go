package record

import (
	"errors"
	"maps"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// tokenOf returns a JWT-shaped string of n bytes.
func tokenOf(n int) string {
	if n < 5 {
		return strings.Repeat("a", n)
	}
	b := []byte(strings.Repeat("x", n))
	b[n/3], b[2*n/3] = '.', '.'
	return string(b)
}

func signedOf(token string) *Signed {
	s := &Signed{
		Signature: make([]byte, 64),
		IssuedAt:  1_800_000_000,
		Expiry:    1_800_000_600,
		Token:     token,
	}
	for i := range s.Signature {
		s.Signature[i] = byte(i)
	}
	for i := range s.EndpointsDigest {
		s.EndpointsDigest[i], s.MetadataDigest[i] = byte(i), byte(255-i)
	}
	return s
}

// validMetadata returns go-micro's node metadata plus a record whose
// token has tokenLen bytes.
func validMetadata(t testing.TB, tokenLen int) map[string]string {
	t.Helper()
	own, err := signedOf(tokenOf(tokenLen)).Metadata()
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{"transport": "http", "broker": "http", "server": "mucp", "registry": "memory", "protocol": "mucp"}
	maps.Copy(md, own)
	return md
}

func TestParseRoundTrip(t *testing.T) {
	for _, n := range []int{1, 5, 511, 512, 513, 1024, 1500, MaxTokenParts * MaxValueLen} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			want := signedOf(tokenOf(n))
			md, err := want.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if got := len(md); got != FixedKeys+(n+MaxValueLen-1)/MaxValueLen {
				t.Errorf("Metadata has %d keys for a %d-byte token", got, n)
			}
			for k, v := range md {
				if len(v) > MaxValueLen {
					t.Errorf("key %s holds %d bytes, more than %d", k, len(v), MaxValueLen)
				}
				if !IsOwnKey(k) {
					t.Errorf("key %s lacks the %s prefix", k, Prefix)
				}
			}

			got, err := Parse(md)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Token != want.Token || got.IssuedAt != want.IssuedAt || got.Expiry != want.Expiry ||
				string(got.Signature) != string(want.Signature) || got.EndpointsDigest != want.EndpointsDigest ||
				got.MetadataDigest != want.MetadataDigest {
				t.Fatalf("Parse(Metadata()) = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSplitTokenLimits(t *testing.T) {
	if _, err := SplitToken(""); !errors.Is(err, ErrMalformed) {
		t.Errorf("SplitToken(\"\") err = %v, want ErrMalformed", err)
	}
	tooLong := tokenOf(MaxTokenParts*MaxValueLen + 1)
	_, err := SplitToken(tooLong)
	if err == nil {
		t.Fatal("SplitToken accepted a token longer than MaxTokenParts parts")
	}
	if !strings.Contains(err.Error(), "4097 bytes") || !strings.Contains(err.Error(), "4096") {
		t.Errorf("error %q does not name the token size and the limit", err)
	}
	if strings.Contains(err.Error(), tooLong[:40]) {
		t.Errorf("error %q contains the token", err)
	}
}

func TestParseUnsigned(t *testing.T) {
	for name, md := range map[string]map[string]string{
		"nil":       nil,
		"empty":     {},
		"go-micro":  {"transport": "http", "server": "mucp"},
		"near-miss": {"signet": "1", "Signet-v": "1", "signet_v": "1", "xsignet-v": "1"},
	} {
		if _, err := Parse(md); !errors.Is(err, ErrUnsigned) {
			t.Errorf("%s: Parse err = %v, want ErrUnsigned", name, err)
		}
	}
}

// hostileCase changes valid metadata (with a 600-byte, two-part token).
type hostileCase struct {
	name   string
	mutate func(md map[string]string)
}

func set(k, v string) func(map[string]string) { return func(md map[string]string) { md[k] = v } }
func del(k string) func(map[string]string)    { return func(md map[string]string) { delete(md, k) } }

func hostileCases() []hostileCase {
	cases := []hostileCase{
		{"version/2", set(KeyVersion, "2")},
		{"version/empty", set(KeyVersion, "")},
		{"version/01", set(KeyVersion, "01")},
		{"version/space", set(KeyVersion, " 1")},
		{"version/1.0", set(KeyVersion, "1.0")},
		{"version/missing", del(KeyVersion)},
		{"unknown-own-key", set(Prefix+"x", "1")},
		{"own-key-prefix-only", set(Prefix, "1")},
		{"big-user-value", set("user", strings.Repeat("v", 1<<20))},
		{"big-signature", set(KeySignature, strings.Repeat("A", 1<<20))},
		{"big-token-part", set(TokenPartKey(1), strings.Repeat("A", 1<<20))},
		{"many-keys", func(md map[string]string) {
			for i := range 10000 {
				md["k"+strconv.Itoa(i)] = "v"
			}
		}},
		{"keys-just-over-limit", func(md map[string]string) {
			for i := 0; len(md) <= MaxMetadataPairs; i++ {
				md["k"+strconv.Itoa(i)] = "v"
			}
		}},
		{"bytes-just-over-limit", func(md map[string]string) {
			total := 0
			for k, v := range md {
				total += len(k) + len(v)
			}
			md["pad"] = strings.Repeat("p", MaxMetadataBytes-total-len("pad")+1)
		}},
	}

	for _, key := range []string{KeySignature, KeyEndpointsDigest, KeyMetadataDigest} {
		cases = append(cases,
			hostileCase{key + "/missing", del(key)},
			hostileCase{key + "/empty", set(key, "")},
			hostileCase{key + "/bang", func(md map[string]string) { md[key] = "!" + md[key][1:] }},
			hostileCase{key + "/std-alphabet", func(md map[string]string) { md[key] = "+/" + md[key][2:] }},
			hostileCase{key + "/padded", func(md map[string]string) { md[key] = md[key][:len(md[key])-1] + "=" }},
			hostileCase{key + "/padding-appended", func(md map[string]string) { md[key] += "==" }},
			hostileCase{key + "/one-short", func(md map[string]string) { md[key] = md[key][1:] }},
			hostileCase{key + "/one-long", func(md map[string]string) { md[key] += "A" }},
			hostileCase{key + "/non-canonical-tail", func(md map[string]string) {
				// The last character carries unused bits; strict decoding
				// requires them to be zero.
				v := []byte(md[key])
				v[len(v)-1] = 'B'
				if strings.HasSuffix(md[key], "B") {
					v[len(v)-1] = 'C'
				}
				md[key] = string(v)
			}},
			hostileCase{key + "/whitespace", func(md map[string]string) { md[key] = " " + md[key][1:] }},
			hostileCase{key + "/newline", func(md map[string]string) { md[key] = md[key][:10] + "\n" + md[key][11:] }},
		)
	}

	for _, key := range []string{KeyIssuedAt, KeyExpiry} {
		for _, v := range []string{"", "abc", "+1800000000", "01800000000", "-1800000000", "0", "-0",
			"1.8e9", " 1800000000", "1800000000 ", "1800000000\n", "9223372036854775808", "9223372036854775807", "253402300800", "0x6B49D200",
			"1_800_000_000", "١٨٠٠٠٠٠٠٠٠"} {
			cases = append(cases, hostileCase{key + "/" + strconv.Quote(v), set(key, v)})
		}
		cases = append(cases, hostileCase{key + "/missing", del(key)})
	}

	for _, v := range []string{"", "0", "-1", "+2", "02", "2 ", "2.0", "9", "99999999999999999999", "two"} {
		cases = append(cases, hostileCase{"tokn/" + strconv.Quote(v), set(KeyTokenParts, v)})
	}
	cases = append(cases,
		hostileCase{"tokn/missing", del(KeyTokenParts)},
		hostileCase{"tokn/1-with-2-parts", set(KeyTokenParts, "1")},
		hostileCase{"tokn/3-with-2-parts", set(KeyTokenParts, "3")},
		hostileCase{"parts/first-missing", del(TokenPartKey(0))},
		hostileCase{"parts/last-missing", del(TokenPartKey(1))},
		hostileCase{"parts/out-of-order", func(md map[string]string) {
			md[TokenPartKey(0)], md[TokenPartKey(1)] = md[TokenPartKey(1)], md[TokenPartKey(0)]
		}},
		hostileCase{"parts/duplicate-extra", set(TokenPartKey(2), "x")},
		hostileCase{"parts/copy-beyond-count", func(md map[string]string) { md[TokenPartKey(2)] = md[TokenPartKey(1)] }},
		hostileCase{"parts/far-beyond-count", set(TokenPartKey(MaxTokenParts+5), "x")},
		hostileCase{"parts/leading-zero-alias", func(md map[string]string) { md[KeyTokenPartPrefix+"01"] = md[TokenPartKey(1)] }},
		hostileCase{"parts/negative-index", set(KeyTokenPartPrefix+"-1", "x")},
		hostileCase{"parts/first-short", func(md map[string]string) { md[TokenPartKey(0)] = md[TokenPartKey(0)][1:] }},
		hostileCase{"parts/first-long", func(md map[string]string) { md[TokenPartKey(0)] += "x" }},
		hostileCase{"parts/last-empty", set(TokenPartKey(1), "")},
		hostileCase{"parts/last-too-long", func(md map[string]string) { md[TokenPartKey(1)] = strings.Repeat("x", MaxValueLen+1) }},
	)
	return cases
}

func TestParseHostile(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			md := validMetadata(t, 600)
			tc.mutate(md)
			s, err := Parse(md)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", s, err)
			}
			if s != nil {
				t.Errorf("Parse returned a record with its error")
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes; attacker-controlled values must be truncated: %.200s", len(err.Error()), err)
			}
		})
	}
}

func TestParseErrorNamesKey(t *testing.T) {
	for key, mutate := range map[string]func(map[string]string){
		KeySignature:       set(KeySignature, "!"),
		KeyIssuedAt:        set(KeyIssuedAt, "+1"),
		KeyExpiry:          del(KeyExpiry),
		KeyEndpointsDigest: set(KeyEndpointsDigest, "AAAA"),
		KeyMetadataDigest:  set(KeyMetadataDigest, ""),
		KeyTokenParts:      set(KeyTokenParts, "0"),
		TokenPartKey(1):    del(TokenPartKey(1)),
		KeyVersion:         set(KeyVersion, "2"),
	} {
		md := validMetadata(t, 600)
		mutate(md)
		_, err := Parse(md)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Parse err = %v; want it to name %s", err, key)
		}
	}
}

func TestParseHugeRecordAllocations(t *testing.T) {
	// Rejecting a 1 MB record must not copy it: the allocations stay a
	// few small error values, whatever the record's size.
	for name, md := range map[string]map[string]string{
		"1MB-user-value": func() map[string]string {
			md := validMetadata(t, 600)
			md["user"] = strings.Repeat("v", 1<<20)
			return md
		}(),
		"1MB-token-part": func() map[string]string {
			md := validMetadata(t, 600)
			md[TokenPartKey(1)] = strings.Repeat("v", 1<<20)
			return md
		}(),
		"10000-keys": func() map[string]string {
			md := validMetadata(t, 600)
			for i := range 10000 {
				md["k"+strconv.Itoa(i)] = "v"
			}
			return md
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(20, func() {
				if _, err := Parse(md); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse err = %v, want ErrMalformed", err)
				}
			})
			if allocs > 8 {
				t.Errorf("Parse allocates %.0f times to reject the record; want at most 8", allocs)
			}
			if b := bytesPerRun(20, func() { _, _ = Parse(md) }); b > 4096 {
				t.Errorf("Parse allocates %d bytes per call to reject the record; want at most 4096", b)
			}
		})
	}
}

func TestParseValidAllocations(t *testing.T) {
	md := validMetadata(t, 1500)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := Parse(md); err != nil {
			t.Fatal(err)
		}
	})
	// The record, three decoded values and the joined token, with room for
	// the standard library's own allocations.
	if allocs > 10 {
		t.Errorf("Parse allocates %.0f times for a valid record; want at most 10", allocs)
	}
}

// bytesPerRun returns the heap bytes one call of f allocates, averaged
// over runs.
func bytesPerRun(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}
