package registry

import (
	"testing"

	"github.com/signet-micro/signet/internal/envconf"
)

// TestEnvNamesKnown keeps the unknown-variable warning of FromEnv in step
// with the variables this package reads.
func TestEnvNamesKnown(t *testing.T) {
	names := []string{EnvTrustBundle, EnvSigningKey, EnvIdentityToken, EnvAudience, EnvIssuer, EnvAlgorithms,
		EnvLeeway, EnvRecordTTL, EnvMaxRecordTTL, EnvRevocations, EnvVerifyMode, EnvServeStale, EnvCacheSize, EnvMetadataLimits}
	for _, name := range names {
		if got := envconf.Unknown([]string{name + "=x", name + "_FILE=x"}); len(got) != 0 {
			t.Errorf("%s is read by FromEnv but reported as unknown: %q", name, got)
		}
	}
}
