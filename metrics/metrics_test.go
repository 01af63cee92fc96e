package metrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/metrics"
	signet "github.com/signet-micro/signet/registry"
)

func TestMetricsCountLookups(t *testing.T) {
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	inner := registry.NewMemoryRegistry()

	m := metrics.New()
	reg := issuer.Wrap(t, inner, creds, clock.Now, signet.WithObserver(m))
	m.WatchVerifier(reg.Verifier())
	promReg := prometheus.NewPedanticRegistry()
	promReg.MustRegister(m)

	if err := reg.Register(testid.Service("greeter", "greeter-1", "127.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if err := inner.Register(testid.Service("greeter", "rogue-1", "127.0.0.1:6666")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := reg.GetService("greeter"); err != nil {
			t.Fatal(err)
		}
	}

	if got := testutil.ToFloat64(m.VerifiedCounter("greeter")); got != 3 {
		t.Errorf("verified nodes = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.RejectedCounter("greeter", "unsigned")); got != 3 {
		t.Errorf("rejected unsigned nodes = %v, want 3", got)
	}

	families, err := promReg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			switch {
			case metric.Counter != nil:
				values[f.GetName()] += metric.Counter.GetValue()
			case metric.Gauge != nil:
				values[f.GetName()] += metric.Gauge.GetValue()
			case metric.Histogram != nil:
				values[f.GetName()] += float64(metric.Histogram.GetSampleCount())
			}
		}
	}
	if values["signet_verify_cache_hits_total"] != 2 {
		t.Errorf("cache hits = %v, want 2 (the second and third lookup)", values["signet_verify_cache_hits_total"])
	}
	if values["signet_record_signature_checks_total"] != 1 {
		t.Errorf("signature checks = %v, want 1", values["signet_record_signature_checks_total"])
	}
	if values["signet_verify_duration_seconds"] != 3 {
		t.Errorf("duration samples = %v, want 3", values["signet_verify_duration_seconds"])
	}
}

func TestMetricsServiceLabelBound(t *testing.T) {
	m := metrics.New()
	for i := 0; i < metrics.MaxServiceLabels+50; i++ {
		m.NodeRejected(fmt.Sprintf("rogue-%d", i), "unsigned")
	}
	if got := testutil.CollectAndCount(m, "signet_nodes_rejected_total"); got != metrics.MaxServiceLabels+1 {
		t.Errorf("rejected series = %d, want %d (the bound plus %q)", got, metrics.MaxServiceLabels+1, metrics.OtherService)
	}
	if got := testutil.ToFloat64(m.RejectedCounter(metrics.OtherService, "unsigned")); got != 50 {
		t.Errorf("%s count = %v, want 50", metrics.OtherService, got)
	}
}
