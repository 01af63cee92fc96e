// Package metrics exports signet's verification events as Prometheus
// metrics. It lives apart from the core packages so that only programs
// that use Prometheus compile its client library.
//
//	m := metrics.New()
//	reg, err := registry.FromEnv(inner, registry.WithObserver(m))
//	m.WatchVerifier(reg.Verifier())
//	prometheus.MustRegister(m)
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/verify"
)

// MaxServiceLabels bounds the number of distinct values of the "service"
// label. Watch results carry whatever service names the registry holds,
// rogue ones included, so without a bound an attacker who writes many
// names could grow the metrics without limit. Names past the bound are
// counted under the label value "_other".
const MaxServiceLabels = 1000

// OtherService is the "service" label value of names past [MaxServiceLabels].
const OtherService = "_other"

// Metrics is a prometheus.Collector and a registry.Observer.
type Metrics struct {
	verified *prometheus.CounterVec
	rejected *prometheus.CounterVec
	stale    *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu        sync.Mutex
	services  map[string]bool
	verifiers []*verify.Verifier

	cacheHits       *prometheus.Desc
	cacheMisses     *prometheus.Desc
	signatureChecks *prometheus.Desc
	tokenChecks     *prometheus.Desc
	cachedRecords   *prometheus.Desc
}

var (
	_ prometheus.Collector = (*Metrics)(nil)
	_ signet.Observer      = (*Metrics)(nil)
)

// New returns metrics named signet_*.
func New() *Metrics {
	return &Metrics{
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_nodes_verified_total",
			Help: "Nodes that passed verification, by service.",
		}, []string{"service"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_nodes_rejected_total",
			Help: "Nodes that failed verification, by service and reason code.",
		}, []string{"service", "reason"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_serve_stale_total",
			Help: "Answers served from the last verified nodes because none verified, by service.",
		}, []string{"service"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signet_verify_duration_seconds",
			Help:    "Time spent verifying one lookup or watch result, by operation.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}, []string{"operation"}),
		services: map[string]bool{},

		cacheHits:       prometheus.NewDesc("signet_verify_cache_hits_total", "Nodes answered from the verification cache.", nil, nil),
		cacheMisses:     prometheus.NewDesc("signet_verify_cache_misses_total", "Nodes that needed a full verification.", nil, nil),
		signatureChecks: prometheus.NewDesc("signet_record_signature_checks_total", "Ed25519 record signature verifications.", nil, nil),
		tokenChecks:     prometheus.NewDesc("signet_token_checks_total", "Identity token verifications.", nil, nil),
		cachedRecords:   prometheus.NewDesc("signet_verify_cached_records", "Verified records in the cache.", nil, nil),
	}
}

// WatchVerifier adds a verifier's cache counters to the metrics. With
// several verifiers, their counters are summed.
func (m *Metrics) WatchVerifier(v *verify.Verifier) {
	if v == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.verifiers = append(m.verifiers, v)
}

// NodeVerified implements registry.Observer.
func (m *Metrics) NodeVerified(service string) {
	m.verified.WithLabelValues(m.label(service)).Inc()
}

// NodeRejected implements registry.Observer.
func (m *Metrics) NodeRejected(service, reason string) {
	m.rejected.WithLabelValues(m.label(service), reason).Inc()
}

// Verified implements registry.Observer.
func (m *Metrics) Verified(operation string, d time.Duration) {
	m.duration.WithLabelValues(operation).Observe(d.Seconds())
}

// ServedStale implements registry.Observer.
func (m *Metrics) ServedStale(service string) {
	m.stale.WithLabelValues(m.label(service)).Inc()
}

func (m *Metrics) label(service string) string {
	m.mu.Lock()
	defer m.mu.Unlock()

	if m.services[service] {
		return service
	}
	if len(m.services) >= MaxServiceLabels {
		return OtherService
	}
	m.services[service] = true
	return service
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.verified.Describe(ch)
	m.rejected.Describe(ch)
	m.stale.Describe(ch)
	m.duration.Describe(ch)
	for _, d := range []*prometheus.Desc{m.cacheHits, m.cacheMisses, m.signatureChecks, m.tokenChecks, m.cachedRecords} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.verified.Collect(ch)
	m.rejected.Collect(ch)
	m.stale.Collect(ch)
	m.duration.Collect(ch)

	m.mu.Lock()
	verifiers := append([]*verify.Verifier(nil), m.verifiers...)
	m.mu.Unlock()

	var total verify.Stats
	for _, v := range verifiers {
		s := v.Stats()
		total.CacheHits += s.CacheHits
		total.CacheMisses += s.CacheMisses
		total.SignatureChecks += s.SignatureChecks
		total.TokenChecks += s.TokenChecks
		total.CachedRecords += s.CachedRecords
	}
	ch <- prometheus.MustNewConstMetric(m.cacheHits, prometheus.CounterValue, float64(total.CacheHits))
	ch <- prometheus.MustNewConstMetric(m.cacheMisses, prometheus.CounterValue, float64(total.CacheMisses))
	ch <- prometheus.MustNewConstMetric(m.signatureChecks, prometheus.CounterValue, float64(total.SignatureChecks))
	ch <- prometheus.MustNewConstMetric(m.tokenChecks, prometheus.CounterValue, float64(total.TokenChecks))
	ch <- prometheus.MustNewConstMetric(m.cachedRecords, prometheus.GaugeValue, float64(total.CachedRecords))
}

// VerifiedCounter returns the counter of verified nodes of service.
func (m *Metrics) VerifiedCounter(service string) prometheus.Counter {
	return m.verified.WithLabelValues(service)
}

// RejectedCounter returns the counter of rejected nodes of service with
// reason code reason.
func (m *Metrics) RejectedCounter(service, reason string) prometheus.Counter {
	return m.rejected.WithLabelValues(service, reason)
}
