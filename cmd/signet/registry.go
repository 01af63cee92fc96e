package main

import (
	"fmt"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/registry/backend"
	"github.com/signet-micro/signet/verify"
)

// openInnerRegistry returns the go-micro registry that the services use,
// configured from MICRO_REGISTRY, MICRO_REGISTRY_ADDRESS and the TLS and
// credential variables of package backend, read through lookup.
func openInnerRegistry(lookup func(string) (string, bool), log logger.Logger) (registry.Registry, error) {
	cfg, err := backend.ConfigFromLookup(lookup)
	if err != nil {
		return nil, err
	}
	cfg.Logger = log
	return backend.New(cfg)
}

// registryVerifier returns the inner registry and a verifier configured
// like the services' wrapper: from MICRO_REGISTRY_TRUST_BUNDLE, the
// audience, issuer, algorithm, leeway and revocation variables.
func (c *command) registryVerifier(log logger.Logger) (registry.Registry, *verify.Verifier, error) {
	var inner registry.Registry
	var err error
	if c.openRegistry != nil {
		inner, err = c.openRegistry()
	} else {
		inner, err = openInnerRegistry(c.lookupEnv, log)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the registry: %w", err)
	}

	wrapper, err := signet.FromLookup(withoutSigningKey(c.lookupEnv), inner, signet.WithLogger(log))
	if err != nil {
		return nil, nil, err
	}
	return inner, wrapper.Verifier(), nil
}

// withoutSigningKey hides the node signing key and identity token from
// lookup. Audit and purge only verify, so they never read a private key,
// even when they run with a service's environment.
func withoutSigningKey(lookup func(string) (string, bool)) func(string) (string, bool) {
	hidden := map[string]bool{
		signet.EnvSigningKey:              true,
		signet.EnvSigningKey + "_FILE":    true,
		signet.EnvIdentityToken:           true,
		signet.EnvIdentityToken + "_FILE": true,
	}
	return func(name string) (string, bool) {
		if hidden[name] {
			return "", false
		}
		return lookup(name)
	}
}

// newLogger returns a go-micro logger that writes to c's stderr at the
// level in MICRO_LOG_LEVEL (default info).
func (c *command) newLogger() logger.Logger {
	level := logger.InfoLevel
	if v, ok := c.lookupEnv("MICRO_LOG_LEVEL"); ok {
		if l, err := logger.GetLevel(v); err == nil {
			level = l
		}
	}
	return newWriterLogger(c.stderr, level)
}
