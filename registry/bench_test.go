package registry_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// benchFleet is a memory registry holding one service with n genuine nodes,
// each with its own key and token, registered through signet.
type benchFleet struct {
	clock  *testid.Clock
	issuer *testid.Issuer
	inner  registry.Registry
	plain  registry.Registry
}

func newBenchFleet(b *testing.B, n int) *benchFleet {
	b.Helper()
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(b, clock.Now)
	inner := registry.NewMemoryRegistry()

	for i := 0; i < n; i++ {
		creds := issuer.Node(b, fmt.Sprintf("greeter-%d", i), []string{"greeter"}, nil, 24*time.Hour)
		reg := issuer.Wrap(b, inner, creds, clock.Now)
		if err := reg.Register(testid.Service("greeter", fmt.Sprintf("greeter-%d", i), fmt.Sprintf("127.0.0.1:%d", 10000+i))); err != nil {
			b.Fatal(err)
		}
	}
	return &benchFleet{clock: clock, issuer: issuer, inner: inner, plain: inner}
}

func (f *benchFleet) wrapped(b *testing.B, opts ...verify.Option) *signet.Registry {
	b.Helper()
	r, err := signet.New(f.inner, signet.WithVerifier(f.issuer.Verifier(b, f.clock.Now, opts...)), signet.WithClock(f.clock.Now))
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func lookup(b *testing.B, r registry.Registry, want int) {
	services, err := r.GetService("greeter")
	if err != nil {
		b.Fatal(err)
	}
	if got := len(services[0].Nodes); got != want {
		b.Fatalf("lookup returned %d nodes, want %d", got, want)
	}
}

// BenchmarkGetServiceWarm compares a lookup of unchanged records through
// signet with the same lookup of the unwrapped memory registry. The
// "ratio" metric is signet's time over the plain time, measured in
// alternating batches within the one benchmark so that machine noise
// affects both sides alike.
func BenchmarkGetServiceWarm(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			f := newBenchFleet(b, n)
			wrapped := f.wrapped(b)
			lookup(b, wrapped, n) // fills the cache

			const batch = 10
			var plainTime, signetTime time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				start := time.Now()
				for j := 0; j < batch; j++ {
					lookup(b, f.plain, n)
				}
				mid := time.Now()
				for j := 0; j < batch; j++ {
					lookup(b, wrapped, n)
				}
				plainTime += mid.Sub(start)
				signetTime += time.Since(mid)
			}
			b.ReportMetric(float64(signetTime)/float64(plainTime), "ratio")
		})
	}
}

// BenchmarkGetServiceCold measures a lookup with empty caches, where every
// record and every token needs its signature checked, against the two
// ed25519.Verify calls per node (one record, one token) that no
// implementation can avoid. The "ratio" metric is the lookup's time over
// the time of 2n ed25519.Verify calls, measured alternately.
func BenchmarkGetServiceCold(b *testing.B) {
	const n = 100
	f := newBenchFleet(b, n)

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 600)
	sig := ed25519.Sign(priv, msg)

	var lookupTime, verifyTime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		wrapped := f.wrapped(b)
		b.StartTimer()

		start := time.Now()
		lookup(b, wrapped, n)
		mid := time.Now()
		for j := 0; j < 2*n; j++ {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("reference signature did not verify")
			}
		}
		lookupTime += mid.Sub(start)
		verifyTime += time.Since(mid)
	}
	b.ReportMetric(float64(lookupTime)/float64(b.N)/n/1e3, "us/node")
	b.ReportMetric(float64(lookupTime)/float64(verifyTime), "ratio")
}

// BenchmarkRegister measures Register through signet against the plain
// memory registry, for a heartbeat (record fresh, reused) and for a
// registration that signs anew.
func BenchmarkRegister(b *testing.B) {
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(b, clock.Now)
	creds := issuer.Node(b, "greeter", []string{"greeter"}, nil, 24*time.Hour)
	svc := testid.Service("greeter", "greeter-1", "127.0.0.1:9000")

	b.Run("plain", func(b *testing.B) {
		inner := registry.NewMemoryRegistry()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := inner.Register(svc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("heartbeat", func(b *testing.B) {
		reg := issuer.Wrap(b, registry.NewMemoryRegistry(), creds, clock.Now)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := reg.Register(svc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		signer, err := signing.NewSigner(creds, signing.WithSignerClock(clock.Now))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			signer.Forget("greeter", "latest", "greeter-1")
			if _, _, err := signer.Sign(svc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetServiceParallel runs warm lookups of one service from all
// cores at once.
func BenchmarkGetServiceParallel(b *testing.B) {
	const n = 100
	f := newBenchFleet(b, n)
	wrapped := f.wrapped(b)
	lookup(b, wrapped, n)

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lookup(b, wrapped, n)
		}
	})
}

// BenchmarkGetServiceAllocs reports the allocations of one warm lookup of
// 100 nodes, plain and through signet, as separate sub-benchmarks.
func BenchmarkGetServiceAllocs(b *testing.B) {
	const n = 100
	f := newBenchFleet(b, n)
	wrapped := f.wrapped(b)
	lookup(b, wrapped, n)

	for name, r := range map[string]registry.Registry{"plain": f.plain, "signet": wrapped} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				lookup(b, r, n)
			}
		})
	}
}
