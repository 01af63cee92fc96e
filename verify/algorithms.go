package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
)

// DefaultAlgorithms is the allow-list of JWS algorithms for identity
// tokens when none is configured.
var DefaultAlgorithms = []string{"EdDSA"}

// SupportedAlgorithms are the algorithms an allow-list may name. HMAC
// ("HS256", ...) is absent on purpose: with an HMAC algorithm, anyone who
// holds the public trust bundle could mint tokens. "none" is absent too.
var SupportedAlgorithms = []string{"EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

func checkAlgorithms(algs []string) (map[string]bool, error) {
	if len(algs) == 0 {
		return nil, fmt.Errorf("verify: the algorithm allow-list is empty; use %q", DefaultAlgorithms)
	}

	allowed := make(map[string]bool, len(algs))
	for _, a := range algs {
		ok := false
		for _, s := range SupportedAlgorithms {
			ok = ok || a == s
		}
		if !ok {
			return nil, fmt.Errorf("verify: algorithm %q cannot be allowed; choose from %q", a, SupportedAlgorithms)
		}
		allowed[a] = true
	}
	return allowed, nil
}

// algorithmFits reports whether alg is a signature algorithm for key.
func algorithmFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return alg == "ES256"
		case "P-384":
			return alg == "ES384"
		}
		return false
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	}
	return false
}
