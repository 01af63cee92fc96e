package registry

import (
	"fmt"
	"os"
	"strings"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/envconf"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// Environment variables read by [FromEnv]. The trust bundle, signing key,
// identity token and revocation list may instead be given as NAME_FILE, the
// path of a file that contains the value. Files are reloaded when they
// change.
const (
	EnvTrustBundle    = "MICRO_REGISTRY_TRUST_BUNDLE"
	EnvSigningKey     = "MICRO_REGISTRY_SIGNING_KEY"
	EnvIdentityToken  = "MICRO_REGISTRY_IDENTITY_TOKEN"
	EnvAudience       = "MICRO_REGISTRY_AUDIENCE"
	EnvIssuer         = "MICRO_REGISTRY_ISSUER"
	EnvAlgorithms     = "MICRO_REGISTRY_TOKEN_ALGORITHMS"
	EnvLeeway         = "MICRO_REGISTRY_CLOCK_LEEWAY"
	EnvRecordTTL      = "MICRO_REGISTRY_RECORD_TTL"
	EnvMaxRecordTTL   = "MICRO_REGISTRY_MAX_RECORD_TTL"
	EnvRevocations    = "MICRO_REGISTRY_REVOCATIONS"
	EnvVerifyMode     = "MICRO_REGISTRY_VERIFY_MODE"
	EnvServeStale     = "MICRO_REGISTRY_SERVE_STALE"
	EnvCacheSize      = "MICRO_REGISTRY_CACHE_SIZE"
	EnvMetadataLimits = "MICRO_REGISTRY_METADATA_LIMITS"
)

// FromEnv wraps inner with the configuration in the environment. A process
// that only discovers services needs only MICRO_REGISTRY_TRUST_BUNDLE; one
// that registers needs MICRO_REGISTRY_SIGNING_KEY and
// MICRO_REGISTRY_IDENTITY_TOKEN too. opts apply after the environment.
//
// It logs a warning for each MICRO_REGISTRY_* variable that nothing reads,
// because a misspelt name would otherwise turn a setting off silently.
func FromEnv(inner registry.Registry, opts ...Option) (*Registry, error) {
	r, err := FromLookup(envconf.Env, inner, opts...)
	if err != nil {
		return nil, err
	}
	for _, name := range envconf.Unknown(os.Environ()) {
		r.opts.logger.Fields(map[string]any{"variable": name}).
			Log(logger.WarnLevel, "signet: ignoring an unknown MICRO_REGISTRY_ variable; check its spelling against the README's configuration table")
	}
	return r, nil
}

// FromLookup is [FromEnv] with the variables read through lookup, which
// has the signature of os.LookupEnv.
func FromLookup(lookup func(string) (string, bool), inner registry.Registry, opts ...Option) (*Registry, error) {
	o := options{logger: logger.DefaultLogger}
	for _, opt := range opts {
		opt(&o)
	}

	envOpts, err := optionsFromEnv(envconf.Lookup(lookup), o.logger)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return New(inner, append(envOpts, opts...)...)
}

func optionsFromEnv(env envconf.Lookup, log logger.Logger) ([]Option, error) {
	verifier, err := verifierFromEnv(env, log)
	if err != nil {
		return nil, err
	}
	opts := []Option{WithVerifier(verifier)}

	signer, err := signerFromEnv(env, log)
	if err != nil {
		return nil, err
	}
	if signer != nil {
		opts = append(opts, WithSigner(signer))
	}

	mode, err := ParseMode(env.String(EnvVerifyMode, string(Enforce)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVerifyMode, err)
	}
	stale, err := env.Duration(EnvServeStale, 0)
	if err != nil {
		return nil, err
	}
	if stale < 0 || stale > MaxServeStale {
		return nil, fmt.Errorf("%s is %v, outside 0 to %v", EnvServeStale, stale, MaxServeStale)
	}
	return append(opts, WithMode(mode), WithServeStale(stale)), nil
}

func verifierFromEnv(env envconf.Lookup, log logger.Logger) (*verify.Verifier, error) {
	bundleSetting, err := env.Secret(EnvTrustBundle)
	if err != nil {
		return nil, err
	}
	if !bundleSetting.IsSet() {
		return nil, fmt.Errorf("%s (or %s_FILE) is not set; give the issuer public keys as a JWK Set or PEM, for example %s_FILE=/etc/signet/bundle.jwks",
			EnvTrustBundle, EnvTrustBundle, EnvTrustBundle)
	}

	var bundle verify.BundleSource
	if bundleSetting.Path != "" {
		if bundle, err = verify.NewFileBundle(bundleSetting.Path, log); err != nil {
			return nil, fmt.Errorf("%s: %w", bundleSetting.Name, err)
		}
	} else if bundle, err = verify.ParseBundle([]byte(bundleSetting.Value)); err != nil {
		return nil, fmt.Errorf("%s: %w", bundleSetting.Name, err)
	}

	leeway, err := env.Duration(EnvLeeway, verify.DefaultLeeway)
	if err != nil {
		return nil, err
	}
	cacheSize, err := env.Int(EnvCacheSize, verify.DefaultCacheSize)
	if err != nil {
		return nil, err
	}
	maxLifetime, err := env.Duration(EnvMaxRecordTTL, verify.DefaultMaxRecordLifetime)
	if err != nil {
		return nil, err
	}

	opts := []verify.Option{
		verify.WithBundle(bundle),
		verify.WithAudience(env.List(EnvAudience, []string{signing.DefaultAudience})...),
		verify.WithAlgorithms(env.List(EnvAlgorithms, verify.DefaultAlgorithms)...),
		verify.WithLeeway(leeway),
		verify.WithCacheSize(cacheSize),
		verify.WithMaxRecordLifetime(maxLifetime),
	}
	if iss := env.String(EnvIssuer, ""); iss != "" {
		opts = append(opts, verify.WithIssuer(iss))
	}

	revSetting, err := env.Secret(EnvRevocations)
	if err != nil {
		return nil, err
	}
	switch {
	case revSetting.Path != "":
		src, err := verify.NewFileRevocations(revSetting.Path, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", revSetting.Name, err)
		}
		opts = append(opts, verify.WithRevocations(src))
	case revSetting.Value != "":
		list, err := verify.ParseRevocations([]byte(strings.ReplaceAll(revSetting.Value, ",", "\n")))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", revSetting.Name, err)
		}
		opts = append(opts, verify.WithRevocations(list))
	}

	v, err := verify.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (check %s, %s, %s, %s and %s)", err, EnvAudience, EnvAlgorithms, EnvLeeway, EnvCacheSize, EnvMaxRecordTTL)
	}
	return v, nil
}

func signerFromEnv(env envconf.Lookup, log logger.Logger) (*signing.Signer, error) {
	keySetting, err := env.Secret(EnvSigningKey)
	if err != nil {
		return nil, err
	}
	tokenSetting, err := env.Secret(EnvIdentityToken)
	if err != nil {
		return nil, err
	}
	switch {
	case !keySetting.IsSet() && !tokenSetting.IsSet():
		return nil, nil
	case !keySetting.IsSet():
		return nil, fmt.Errorf("%s is set but %s (or %s_FILE) is not; a node that registers needs both its key and its token", tokenSetting.Name, EnvSigningKey, EnvSigningKey)
	case !tokenSetting.IsSet():
		return nil, fmt.Errorf("%s is set but %s (or %s_FILE) is not; a node that registers needs both its key and its token", keySetting.Name, EnvIdentityToken, EnvIdentityToken)
	}

	var creds signing.CredentialSource
	if keySetting.Path != "" && tokenSetting.Path != "" {
		if creds, err = signing.NewFileCredentials(keySetting.Path, tokenSetting.Path, log); err != nil {
			return nil, fmt.Errorf("%s and %s: %w", keySetting.Name, tokenSetting.Name, err)
		}
	} else {
		// NOTE: a key or token given inline is fixed for the life of the
		// process; only the _FILE variants reload.
		keyPEM, err := keySetting.Read()
		if err != nil {
			return nil, err
		}
		key, err := signing.ParsePrivateKeyPEM(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keySetting.Name, err)
		}
		token, err := tokenSetting.Read()
		if err != nil {
			return nil, err
		}
		if creds, err = signing.NewCredentials(key, strings.TrimSpace(string(token))); err != nil {
			return nil, fmt.Errorf("%s and %s: %w", keySetting.Name, tokenSetting.Name, err)
		}
	}

	ttl, err := env.Duration(EnvRecordTTL, signing.DefaultRecordTTL)
	if err != nil {
		return nil, err
	}
	limits := signing.ConsulLimits
	switch l := env.String(EnvMetadataLimits, "consul"); l {
	case "consul":
	case "verifier":
		limits = signing.VerifierLimits
	default:
		return nil, fmt.Errorf("%s is %q; use \"consul\" (the default, fits every backend) or \"verifier\"", EnvMetadataLimits, l)
	}

	s, err := signing.NewSigner(creds, signing.WithRecordTTL(ttl), signing.WithMetadataLimits(limits))
	if err != nil {
		return nil, fmt.Errorf("%w (check %s)", err, EnvRecordTTL)
	}
	return s, nil
}
