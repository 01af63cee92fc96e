package verify_test

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/verify"
)

// longTokenFixture returns a fixture whose token spans three full parts
// and a shorter fourth, so that parts can be reordered without changing
// their sizes.
func longTokenFixture(t *testing.T) *fixture {
	f := newFixture(t)
	services := []string{"greeter"}
	for i := range 60 {
		services = append(services, fmt.Sprintf("padding-service-%02d-*", i))
	}
	f.creds = f.issuer.Node(t, "greeter", services, nil, time.Hour)
	f.signer = testid.Signer(t, f.creds, f.clock.Now)
	return f
}

func TestHostileMetadata(t *testing.T) {
	f := longTokenFixture(t)
	signed := f.sign(t, service())
	parts, _ := strconv.Atoi(signed.Nodes[0].Metadata[record.KeyTokenParts])
	if parts < 3 {
		t.Fatalf("token has %d parts; want at least 3", parts)
	}
	last := record.TokenPartKey(parts - 1)

	type hostile struct {
		name   string
		mutate func(md map[string]string)
		want   error
	}
	cases := []hostile{
		{"1MB-user-value", func(md map[string]string) { md["user"] = strings.Repeat("v", 1<<20) }, verify.ErrMalformed},
		{"1MB-signature", func(md map[string]string) { md[record.KeySignature] = strings.Repeat("A", 1<<20) }, verify.ErrMalformed},
		{"1MB-token-part", func(md map[string]string) { md[last] = strings.Repeat("A", 1<<20) }, verify.ErrMalformed},
		{"10000-keys", func(md map[string]string) {
			for i := range 10000 {
				md["k"+strconv.Itoa(i)] = "v"
			}
		}, verify.ErrMalformed},
		{"parts/out-of-order-equal-size", func(md map[string]string) {
			md[record.TokenPartKey(0)], md[record.TokenPartKey(1)] = md[record.TokenPartKey(1)], md[record.TokenPartKey(0)]
		}, verify.ErrTokenMalformed},
		{"parts/out-of-order-sizes", func(md map[string]string) {
			md[record.TokenPartKey(0)], md[last] = md[last], md[record.TokenPartKey(0)]
		}, verify.ErrMalformed},
		{"parts/missing-middle", func(md map[string]string) { delete(md, record.TokenPartKey(1)) }, verify.ErrMalformed},
		{"parts/missing-last", func(md map[string]string) { delete(md, last) }, verify.ErrMalformed},
		{"parts/extra-duplicate", func(md map[string]string) { md[record.TokenPartKey(parts)] = md[last] }, verify.ErrMalformed},
		{"parts/extra-beyond-max", func(md map[string]string) { md[record.TokenPartKey(record.MaxTokenParts)] = "x" }, verify.ErrMalformed},
		{"parts/count-short", func(md map[string]string) { md[record.KeyTokenParts] = strconv.Itoa(parts - 1) }, verify.ErrMalformed},
		{"parts/count-plus", func(md map[string]string) { md[record.KeyTokenParts] = "+" + strconv.Itoa(parts) }, verify.ErrMalformed},
		{"parts/count-leading-zero", func(md map[string]string) { md[record.KeyTokenParts] = "0" + strconv.Itoa(parts) }, verify.ErrMalformed},
		{"iat/plus", func(md map[string]string) { md[record.KeyIssuedAt] = "+" + md[record.KeyIssuedAt] }, verify.ErrMalformed},
		{"iat/leading-zero", func(md map[string]string) { md[record.KeyIssuedAt] = "0" + md[record.KeyIssuedAt] }, verify.ErrMalformed},
		{"exp/plus", func(md map[string]string) { md[record.KeyExpiry] = "+" + md[record.KeyExpiry] }, verify.ErrMalformed},
		{"exp/leading-zero", func(md map[string]string) { md[record.KeyExpiry] = "0" + md[record.KeyExpiry] }, verify.ErrMalformed},
		{"exp/huge", func(md map[string]string) { md[record.KeyExpiry] = "9223372036854775807" }, verify.ErrMalformed},
		{"exp/year-9999", func(md map[string]string) { md[record.KeyExpiry] = "253402300799" }, verify.ErrRecordOutlivesToken},
		{"iat/huge", func(md map[string]string) { md[record.KeyIssuedAt] = "9223372036854775807" }, verify.ErrMalformed},
		{"version/2", func(md map[string]string) { md[record.KeyVersion] = "2" }, verify.ErrMalformed},
		{"version/missing", func(md map[string]string) { delete(md, record.KeyVersion) }, verify.ErrMalformed},
	}
	for _, key := range []string{record.KeySignature, record.KeyEndpointsDigest, record.KeyMetadataDigest} {
		for name, edit := range map[string]func(string) string{
			"bang":       func(v string) string { return "!" + v[1:] },
			"std":        func(v string) string { return "+/" + v[2:] },
			"padded":     func(v string) string { return v + "==" },
			"short":      func(v string) string { return v[1:] },
			"newline":    func(v string) string { return v[:5] + "\n" + v[6:] },
			"empty":      func(v string) string { return "" },
			"whitespace": func(v string) string { return v[:len(v)-1] + " " },
		} {
			cases = append(cases, hostile{key + "/" + name, func(md map[string]string) { md[key] = edit(md[key]) }, verify.ErrMalformed})
		}
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := testid.CloneService(signed)
			tc.mutate(svc.Nodes[0].Metadata)
			_, err := f.newVerifier(t).VerifyNode(svc.Name, svc.Version, svc.Nodes[0])
			wantReason(t, err, tc.want)
			if len(err.Error()) > 1024 {
				t.Errorf("error is %d bytes: %.200s...", len(err.Error()), err)
			}
		})
	}
}

func TestHostileRejectionAllocations(t *testing.T) {
	// Rejecting a 1 MB record costs a few small allocations and never a
	// copy of the record.
	f := newFixture(t)
	signed := f.sign(t, service())
	for name, edit := range map[string]func(md map[string]string){
		"1MB-user-value": func(md map[string]string) { md["user"] = strings.Repeat("v", 1<<20) },
		"1MB-token-part": func(md map[string]string) { md[record.TokenPartKey(1)] = strings.Repeat("A", 1<<20) },
		"10000-keys": func(md map[string]string) {
			for i := range 10000 {
				md["k"+strconv.Itoa(i)] = "v"
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			node := testid.CloneNode(signed.Nodes[0])
			edit(node.Metadata)
			verify := func() {
				if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, node); err == nil {
					t.Fatal("accepted")
				}
			}
			if allocs := testing.AllocsPerRun(20, verify); allocs > 20 {
				t.Errorf("VerifyNode allocates %.0f times to reject the record; want at most 20", allocs)
			}
			if b := bytesPerRun(20, verify); b > 8192 {
				t.Errorf("VerifyNode allocates %d bytes per call to reject the record; want at most 8192", b)
			}
		})
	}
}

func TestHostileNoPanic(t *testing.T) {
	// Shapes of nodes a hostile registry can return.
	f := newFixture(t)
	signed := f.sign(t, service())
	nodes := []*registry.Node{
		nil,
		{},
		{Id: strings.Repeat("i", 1<<16), Address: strings.Repeat("a", 1<<16), Metadata: signed.Nodes[0].Metadata},
		{Id: "\x00", Address: "\xff\xfe", Metadata: map[string]string{"\xff": "\x00", record.KeyVersion: "1"}},
		{Id: "x", Address: "10.0.0.1:1", Metadata: map[string]string{record.KeyTokenParts: "8"}},
	}
	for i, n := range nodes {
		for _, name := range []string{"", "greeter", strings.Repeat("s", 1<<16)} {
			_, err := f.verifier.VerifyNode(name, "\x00", n)
			if err == nil {
				t.Errorf("node %d accepted under service %.10q", i, name)
			}
			var rej *verify.Rejection
			if !errors.As(err, &rej) {
				t.Errorf("node %d: err = %T, want *verify.Rejection", i, err)
			}
		}
	}
}

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
