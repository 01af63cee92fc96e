package backend

import (
	"testing"

	"github.com/signet-micro/signet/internal/envconf"
)

// TestEnvNamesKnown keeps the unknown-variable warning of registry.FromEnv
// in step with the variables this package reads.
func TestEnvNamesKnown(t *testing.T) {
	names := []string{EnvRegistry, EnvAddress, EnvTLSCAFile, EnvTLSCertFile, EnvTLSKeyFile, EnvTLSServerName,
		EnvConsulToken, EnvEtcdUsername, EnvEtcdPassword, EnvKubernetesNamespace, EnvTimeout}
	for _, name := range names {
		if got := envconf.Unknown([]string{name + "=x", name + "_FILE=x"}); len(got) > 0 && got[0] == name {
			t.Errorf("%s is read by registry/backend but reported as unknown", name)
		}
		if got := envconf.Unknown([]string{name + "=x"}); len(got) != 0 {
			t.Errorf("%s is read by registry/backend but reported as unknown", name)
		}
	}
}
