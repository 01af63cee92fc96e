package backend

import (
	"go-micro.dev/v4/registry"
)

// newMemory builds go-micro's in-process memory registry, which only the
// services of one process share. Every network setting is rejected,
// because the memory registry would ignore it.
func newMemory(cfg Config) (registry.Registry, error) {
	if err := rejectUnused(cfg, Memory, EnvAddress, EnvTLSCAFile, EnvTLSCertFile, EnvTLSKeyFile, EnvTLSServerName,
		EnvConsulToken, EnvEtcdUsername, EnvEtcdPassword, EnvKubernetesNamespace, EnvTimeout); err != nil {
		return nil, err
	}
	return registry.NewMemoryRegistry(), nil
}
