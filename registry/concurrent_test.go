package registry_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
)

func TestConcurrentLookupsVerifyOnce(t *testing.T) {
	const nodes, lookups = 20, 16
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(t, clock.Now)
	inner := registry.NewMemoryRegistry()
	for i := 0; i < nodes; i++ {
		creds := issuer.Node(t, fmt.Sprintf("greeter-%d", i), []string{"greeter"}, nil, time.Hour)
		id := fmt.Sprintf("greeter-%d", i)
		if err := issuer.Wrap(t, inner, creds, clock.Now).Register(testid.Service("greeter", id, fmt.Sprintf("127.0.0.1:%d", 9000+i))); err != nil {
			t.Fatal(err)
		}
	}

	verifier := issuer.Verifier(t, clock.Now)
	reg, err := signet.New(inner, signet.WithVerifier(verifier))
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	failures := make(chan string, lookups)
	for i := 0; i < lookups; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			services, err := reg.GetService("greeter")
			if err != nil {
				failures <- err.Error()
				return
			}
			if got := len(services[0].Nodes); got != nodes {
				failures <- fmt.Sprintf("lookup returned %d nodes, want %d", got, nodes)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}

	stats := verifier.Stats()
	if stats.SignatureChecks != nodes {
		t.Errorf("%d record signature checks for %d records looked up %d times at once, want one each", stats.SignatureChecks, nodes, lookups)
	}
	if stats.TokenChecks != nodes {
		t.Errorf("%d token checks for %d tokens, want one each", stats.TokenChecks, nodes)
	}
}

// TestConcurrentRegisterLookupWatch runs heartbeats, lookups and watchers
// of one service at the same time, for the race detector, and checks that
// no lookup or watch result ever carries the rogue node written alongside.
func TestConcurrentRegisterLookupWatch(t *testing.T) {
	clock := testid.NewClock(time.Now())
	issuer := testid.NewIssuer(t, clock.Now)
	inner := registry.NewMemoryRegistry()
	reg := issuer.Wrap(t, inner, issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour), clock.Now,
		signet.WithSweepInterval(5*time.Millisecond), signet.WithLogger((&testid.LogBuffer{}).Logger()))

	const rounds = 200
	var wg sync.WaitGroup
	failures := make(chan string, 64)
	report := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}

	for n := 0; n < 3; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := testid.Service("greeter", fmt.Sprintf("greeter-%d", n), fmt.Sprintf("127.0.0.1:%d", 9000+n))
			for i := 0; i < rounds; i++ {
				if err := reg.Register(svc); err != nil {
					report("Register: %v", err)
					return
				}
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			rogue := testid.Service("greeter", fmt.Sprintf("rogue-%d", i%5), "127.0.0.1:6666")
			if err := inner.Register(rogue); err != nil {
				report("rogue Register: %v", err)
				return
			}
		}
	}()

	for l := 0; l < 3; l++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				services, err := reg.GetService("greeter")
				if err != nil {
					continue
				}
				for _, svc := range services {
					for _, n := range svc.Nodes {
						if n.Address == "127.0.0.1:6666" {
							report("lookup returned rogue node %s", n.Id)
						}
					}
				}
			}
		}()
	}

	watchers := make([]registry.Watcher, 2)
	for i := range watchers {
		w, err := reg.Watch(registry.WatchService("greeter"))
		if err != nil {
			t.Fatal(err)
		}
		watchers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				res, err := w.Next()
				if err != nil {
					return
				}
				if res.Action == "delete" {
					continue
				}
				for _, n := range res.Service.Nodes {
					if n.Address == "127.0.0.1:6666" {
						report("watch result carried rogue node %s", n.Id)
					}
				}
			}
		}()
	}

	time.AfterFunc(2*time.Second, func() {
		for _, w := range watchers {
			w.Stop()
		}
	})
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
}
