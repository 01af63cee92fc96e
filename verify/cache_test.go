package verify_test

import (
	"sync"
	"testing"
	"time"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/verify"
)

func TestCacheRepeatLookupsFree(t *testing.T) {
	f := newFixture(t)
	signed := f.sign(t, service())
	node := signed.Nodes[0]

	for range 100 {
		if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, testid.CloneNode(node)); err != nil {
			t.Fatal(err)
		}
	}
	s := f.verifier.Stats()
	if s.SignatureChecks != 1 || s.TokenChecks != 1 {
		t.Errorf("100 lookups of one record made %d signature and %d token checks; want 1 each", s.SignatureChecks, s.TokenChecks)
	}
	if s.CacheHits != 99 || s.CacheMisses != 1 || s.CachedRecords != 1 {
		t.Errorf("stats = %+v; want 99 hits, 1 miss, 1 cached record", s)
	}
}

func TestCacheRejectedRecordsCheap(t *testing.T) {
	// A rogue record that fails its signature is remembered, so repeating
	// it costs no second signature check.
	f := newFixture(t)
	signed := f.sign(t, service())
	rogue := testid.CloneNode(signed.Nodes[0])
	rogue.Address = "10.6.6.6:9000"

	for range 50 {
		_, err := f.verifier.VerifyNode(signed.Name, signed.Version, rogue)
		wantReason(t, err, verify.ErrBadSignature)
	}
	if s := f.verifier.Stats(); s.SignatureChecks != 1 {
		t.Errorf("50 lookups of one rogue record made %d signature checks; want 1", s.SignatureChecks)
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFixture(t)
	v := f.newVerifier(t, verify.WithCacheSize(0))
	signed := f.sign(t, service())
	for range 3 {
		if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
			t.Fatal(err)
		}
	}
	if s := v.Stats(); s.SignatureChecks != 3 || s.CachedRecords != 0 {
		t.Errorf("stats without cache = %+v; want 3 signature checks and nothing cached", s)
	}
	f.clock.Advance(11 * time.Minute)
	_, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
	wantReason(t, err, verify.ErrRecordExpired)
}

func TestCacheEvictsBeyondSize(t *testing.T) {
	f := newFixture(t)
	v := f.newVerifier(t, verify.WithCacheSize(8))
	for i := range 20 {
		svc := service()
		svc.Nodes[0].Id = "greeter-" + string(rune('a'+i))
		signed := f.sign(t, svc)
		if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Stats().CachedRecords; got != 8 {
		t.Errorf("cache holds %d records, want its size 8", got)
	}
}

func TestCacheConcurrent(t *testing.T) {
	// Many goroutines verifying the same genuine and rogue records agree
	// with a single-threaded verifier; run with -race.
	f := newFixture(t)
	signed := f.sign(t, service())
	rogue := testid.CloneNode(signed.Nodes[0])
	rogue.Id = "rogue"

	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if i%2 == 0 {
					if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
						errs <- "genuine rejected: " + err.Error()
						return
					}
				} else if _, err := f.verifier.VerifyNode(signed.Name, signed.Version, rogue); err == nil {
					errs <- "rogue accepted"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if s := f.verifier.Stats(); s.SignatureChecks > 4 {
		t.Errorf("%d signature checks for two distinct records", s.SignatureChecks)
	}
}
