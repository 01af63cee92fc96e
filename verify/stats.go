package verify

import "sync/atomic"

type stats struct {
	cacheHits       atomic.Uint64
	cacheMisses     atomic.Uint64
	signatureChecks atomic.Uint64
	tokenChecks     atomic.Uint64
}

// Stats are counters of a Verifier's work since it was created.
type Stats struct {
	// CacheHits counts nodes verified from the record cache.
	CacheHits uint64
	// CacheMisses counts nodes that needed a full verification.
	CacheMisses uint64
	// SignatureChecks counts Ed25519 record signature verifications.
	SignatureChecks uint64
	// TokenChecks counts identity token verifications.
	TokenChecks uint64
	// CachedRecords is the number of records in the cache now.
	CachedRecords int
}

// Stats returns the verifier's counters.
func (v *Verifier) Stats() Stats {
	return Stats{
		CacheHits:       v.stats.cacheHits.Load(),
		CacheMisses:     v.stats.cacheMisses.Load(),
		SignatureChecks: v.stats.signatureChecks.Load(),
		TokenChecks:     v.stats.tokenChecks.Load(),
		CachedRecords:   v.records.len(),
	}
}
