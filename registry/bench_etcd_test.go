package registry_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-micro/plugins/v4/registry/etcd"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/internal/testserver"
)

func etcdRegistry(b *testing.B, server *testserver.Etcd) registry.Registry {
	b.Helper()
	addrs := make([]string, len(server.Endpoints))
	for i, e := range server.Endpoints {
		addrs[i] = strings.TrimPrefix(e, "http://")
	}
	return etcd.NewRegistry(registry.Addrs(addrs...), registry.Timeout(5*time.Second))
}

// BenchmarkEtcdGetService compares a warm verified lookup of 100 nodes in a
// real embedded etcd with the unwrapped etcd lookup, alternating in
// batches. The "ratio" metric is signet's time over the plain time.
func BenchmarkEtcdGetService(b *testing.B) {
	const n = 100
	server := testserver.StartEtcd(b, testserver.EtcdOptions{})
	inner := etcdRegistry(b, server)
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(b, clock.Now)

	for i := 0; i < n; i++ {
		creds := issuer.Node(b, fmt.Sprintf("greeter-%d", i), []string{"greeter"}, nil, 24*time.Hour)
		reg := issuer.Wrap(b, inner, creds, clock.Now)
		if err := reg.Register(testid.Service("greeter", fmt.Sprintf("greeter-%d", i), fmt.Sprintf("127.0.0.1:%d", 10000+i)), registry.RegisterTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	wrapped := issuer.Wrap(b, inner, nil, clock.Now)
	lookup(b, wrapped, n)

	const batch = 5
	var plainTime, signetTime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		start := time.Now()
		for j := 0; j < batch; j++ {
			lookup(b, inner, n)
		}
		mid := time.Now()
		for j := 0; j < batch; j++ {
			lookup(b, wrapped, n)
		}
		plainTime += mid.Sub(start)
		signetTime += time.Since(mid)
	}
	b.ReportMetric(float64(signetTime)/float64(plainTime), "ratio")
}

// BenchmarkEtcdWatchResult measures the time from a registration in a real
// embedded etcd to the watch result that reports it, through a plain and a
// signet watcher side by side. Each iteration registers one new node, so
// the signet watcher verifies a record it has not seen.
func BenchmarkEtcdWatchResult(b *testing.B) {
	server := testserver.StartEtcd(b, testserver.EtcdOptions{})
	inner := etcdRegistry(b, server)
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(b, clock.Now)
	creds := issuer.Node(b, "greeter", []string{"greeter"}, nil, 24*time.Hour)
	signer := issuer.Wrap(b, inner, creds, clock.Now)
	wrapped := issuer.Wrap(b, inner, nil, clock.Now)

	plainWatch, err := inner.Watch(registry.WatchService("greeter"))
	if err != nil {
		b.Fatal(err)
	}
	defer plainWatch.Stop()
	signetWatch, err := wrapped.Watch(registry.WatchService("greeter"))
	if err != nil {
		b.Fatal(err)
	}
	defer signetWatch.Stop()

	next := func(w registry.Watcher, id string) time.Time {
		for {
			res, err := w.Next()
			if err != nil {
				b.Fatal(err)
			}
			if res.Action != "delete" && len(res.Service.Nodes) == 1 && res.Service.Nodes[0].Id == id {
				return time.Now()
			}
		}
	}

	var plainTime, signetTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("greeter-%d", i)
		start := time.Now()
		if err := signer.Register(testid.Service("greeter", id, "127.0.0.1:9000"), registry.RegisterTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
		plainTime += next(plainWatch, id).Sub(start)
		signetTime += next(signetWatch, id).Sub(start)
	}
	b.ReportMetric(float64(plainTime)/float64(b.N)/1e3, "plain-us/result")
	b.ReportMetric(float64(signetTime)/float64(b.N)/1e3, "signet-us/result")
}

func etcdNewRegistry(addrs []string) registry.Registry {
	return etcd.NewRegistry(registry.Addrs(addrs...), registry.Timeout(5*time.Second))
}
