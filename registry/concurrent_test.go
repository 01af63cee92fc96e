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
