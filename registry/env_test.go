package registry_test

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
)

// envFiles holds the secrets a node needs, inline and as files.
type envFiles struct {
	issuer                                          *testid.Issuer
	creds                                           *signing.Credentials
	bundle                                          string
	keyPEM                                          string
	dir                                             string
	bundleFile, keyFile, tokenFile, revocationsFile string
}

func newEnvFiles(t *testing.T) *envFiles {
	t.Helper()
	issuer := testid.NewIssuer(t, time.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	jwks, err := issuer.Bundle.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := signing.MarshalPrivateKeyPEM(creds.Key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &envFiles{issuer: issuer, creds: creds, bundle: string(jwks), keyPEM: string(keyPEM), dir: dir}
	f.bundleFile = writeFile(t, dir, "bundle.jwks", f.bundle)
	f.keyFile = writeFile(t, dir, "node.key", f.keyPEM)
	f.tokenFile = writeFile(t, dir, "node.jwt", creds.Token+"\n")
	f.revocationsFile = writeFile(t, dir, "revoked.txt", "jti nobody\n")
	return f
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func lookupOf(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// registerAndLookup checks that reg signs and verifies end to end.
func registerAndLookup(t *testing.T, reg *signet.Registry) {
	t.Helper()
	if err := reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatalf("Register: %v", err)
	}
	got, err := reg.GetService("greeter")
	if err != nil || len(nodeIDs(got)) != 1 {
		t.Fatalf("GetService = %v, %v", got, err)
	}
}

func TestFromLookupAllVariables(t *testing.T) {
	f := newEnvFiles(t)
	common := map[string]string{
		signet.EnvAudience:       "signet, other",
		signet.EnvIssuer:         "test",
		signet.EnvAlgorithms:     "EdDSA",
		signet.EnvLeeway:         "10s",
		signet.EnvRecordTTL:      "5m",
		signet.EnvVerifyMode:     "enforce",
		signet.EnvServeStale:     "1m",
		signet.EnvCacheSize:      "100",
		signet.EnvMetadataLimits: "consul",
	}
	inline := map[string]string{
		signet.EnvTrustBundle:   f.bundle,
		signet.EnvSigningKey:    f.keyPEM,
		signet.EnvIdentityToken: f.creds.Token,
		signet.EnvRevocations:   "jti nobody,kid nothing",
	}
	files := map[string]string{
		signet.EnvTrustBundle + "_FILE":   f.bundleFile,
		signet.EnvSigningKey + "_FILE":    f.keyFile,
		signet.EnvIdentityToken + "_FILE": f.tokenFile,
		signet.EnvRevocations + "_FILE":   f.revocationsFile,
	}
	for name, secrets := range map[string]map[string]string{"inline": inline, "files": files} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range common {
				env[k] = v
			}
			for k, v := range secrets {
				env[k] = v
			}
			reg, err := signet.FromLookup(lookupOf(env), registry.NewMemoryRegistry())
			if err != nil {
				t.Fatalf("FromLookup: %v", err)
			}
			if reg.Signer() == nil {
				t.Fatal("no signer although key and token are set")
			}
			registerAndLookup(t, reg)
		})
	}

	// Each secret alone as a file, the others inline.
	for fileVar := range files {
		t.Run("mixed/"+fileVar, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range inline {
				if k+"_FILE" != fileVar {
					env[k] = v
				}
			}
			env[fileVar] = files[fileVar]
			reg, err := signet.FromLookup(lookupOf(env), registry.NewMemoryRegistry())
			if err != nil {
				t.Fatalf("FromLookup: %v", err)
			}
			registerAndLookup(t, reg)
		})
	}
}

func TestFromLookupDiscoveryOnly(t *testing.T) {
	f := newEnvFiles(t)
	reg, err := signet.FromLookup(lookupOf(map[string]string{signet.EnvTrustBundle: f.bundle}), registry.NewMemoryRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if reg.Signer() != nil {
		t.Fatal("a signer without key and token")
	}
	if err := reg.Register(testid.Service("greeter", "g", "10.0.0.1:1")); err != signet.ErrNoSigner {
		t.Fatalf("Register err = %v, want ErrNoSigner", err)
	}
}

func TestFromLookupErrors(t *testing.T) {
	f := newEnvFiles(t)
	pemBody := strings.Split(f.keyPEM, "\n")[1]
	garbledKey := "-----BEGIN PRIVATE KEY-----\n" + pemBody[:len(pemBody)-8] + "\n-----END PRIVATE KEY-----\n"
	garbledFile := writeFile(t, f.dir, "garbled.key", garbledKey)
	block, _ := pem.Decode([]byte(f.keyPEM))
	publicAsPrivate := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes}))

	base := map[string]string{signet.EnvTrustBundle: f.bundle}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}

	cases := []struct {
		name    string
		env     map[string]string
		mention []string
	}{
		{"bundle-missing", with(map[string]string{signet.EnvTrustBundle: ""}), []string{signet.EnvTrustBundle}},
		{"bundle-both", with(map[string]string{signet.EnvTrustBundle + "_FILE": f.bundleFile}), []string{signet.EnvTrustBundle, signet.EnvTrustBundle + "_FILE"}},
		{"bundle-garbage", with(map[string]string{signet.EnvTrustBundle: "garbage"}), []string{signet.EnvTrustBundle}},
		{"bundle-file-missing", with(map[string]string{signet.EnvTrustBundle: "", signet.EnvTrustBundle + "_FILE": filepath.Join(f.dir, "nope")}), []string{signet.EnvTrustBundle + "_FILE"}},
		{"key-both", with(map[string]string{signet.EnvSigningKey: f.keyPEM, signet.EnvSigningKey + "_FILE": f.keyFile, signet.EnvIdentityToken: f.creds.Token}), []string{signet.EnvSigningKey, signet.EnvSigningKey + "_FILE"}},
		{"token-both", with(map[string]string{signet.EnvSigningKey: f.keyPEM, signet.EnvIdentityToken: f.creds.Token, signet.EnvIdentityToken + "_FILE": f.tokenFile}), []string{signet.EnvIdentityToken, signet.EnvIdentityToken + "_FILE"}},
		{"revocations-both", with(map[string]string{signet.EnvRevocations: "jti a", signet.EnvRevocations + "_FILE": f.revocationsFile}), []string{signet.EnvRevocations, signet.EnvRevocations + "_FILE"}},
		{"key-without-token", with(map[string]string{signet.EnvSigningKey: f.keyPEM}), []string{signet.EnvIdentityToken}},
		{"key-file-without-token", with(map[string]string{signet.EnvSigningKey + "_FILE": f.keyFile}), []string{signet.EnvIdentityToken}},
		{"token-without-key", with(map[string]string{signet.EnvIdentityToken: f.creds.Token}), []string{signet.EnvSigningKey}},
		{"key-malformed-pem", with(map[string]string{signet.EnvSigningKey: garbledKey, signet.EnvIdentityToken: f.creds.Token}), []string{signet.EnvSigningKey}},
		{"key-public-pem", with(map[string]string{signet.EnvSigningKey: publicAsPrivate, signet.EnvIdentityToken: f.creds.Token}), []string{signet.EnvSigningKey}},
		{"key-file-malformed", with(map[string]string{signet.EnvSigningKey + "_FILE": garbledFile, signet.EnvIdentityToken + "_FILE": f.tokenFile}), []string{signet.EnvSigningKey + "_FILE"}},
		{"token-garbage", with(map[string]string{signet.EnvSigningKey: f.keyPEM, signet.EnvIdentityToken: "not-a-token"}), []string{signet.EnvIdentityToken}},
		{"mode", with(map[string]string{signet.EnvVerifyMode: "off"}), []string{signet.EnvVerifyMode, "off"}},
		{"stale-bad", with(map[string]string{signet.EnvServeStale: "forever"}), []string{signet.EnvServeStale}},
		{"stale-too-long", with(map[string]string{signet.EnvServeStale: "2h"}), []string{signet.EnvServeStale}},
		{"leeway", with(map[string]string{signet.EnvLeeway: "1h"}), []string{signet.EnvLeeway}},
		{"cache", with(map[string]string{signet.EnvCacheSize: "many"}), []string{signet.EnvCacheSize}},
		{"algorithms", with(map[string]string{signet.EnvAlgorithms: "HS256"}), []string{"HS256"}},
		{"ttl", with(map[string]string{signet.EnvSigningKey: f.keyPEM, signet.EnvIdentityToken: f.creds.Token, signet.EnvRecordTTL: "10s"}), []string{signet.EnvRecordTTL}},
		{"limits", with(map[string]string{signet.EnvSigningKey: f.keyPEM, signet.EnvIdentityToken: f.creds.Token, signet.EnvMetadataLimits: "none"}), []string{signet.EnvMetadataLimits}},
		{"revocations-bad", with(map[string]string{signet.EnvRevocations: "sub x"}), []string{signet.EnvRevocations}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := signet.FromLookup(lookupOf(tc.env), registry.NewMemoryRegistry())
			if err == nil {
				t.Fatalf("FromLookup succeeded: %v", reg)
			}
			msg := err.Error()
			for _, m := range tc.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not name %s", msg, m)
				}
			}
			if strings.Contains(msg, pemBody[:20]) || strings.Contains(msg, pemBody[20:40]) {
				t.Errorf("error contains key material: %s", msg)
			}
			if strings.Contains(msg, f.creds.Token) || strings.Contains(msg, f.creds.Token[len(f.creds.Token)-40:]) {
				t.Errorf("error contains the token: %s", msg)
			}
		})
	}
}

func TestFromLookupBundleFileReloads(t *testing.T) {
	f := newEnvFiles(t)
	other := testid.NewIssuer(t, time.Now)
	otherJWKS, _ := other.Bundle.MarshalJWKS()
	bundleFile := writeFile(t, f.dir, "other.jwks", string(otherJWKS))
	env := map[string]string{
		signet.EnvTrustBundle + "_FILE":   bundleFile,
		signet.EnvSigningKey + "_FILE":    f.keyFile,
		signet.EnvIdentityToken + "_FILE": f.tokenFile,
	}
	reg, err := signet.FromLookup(lookupOf(env), registry.NewMemoryRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(testid.Service("greeter", "greeter-1", "10.0.0.1:9000")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetService("greeter"); err == nil {
		t.Fatal("node verified against a bundle without its issuer")
	}

	// Publishing the issuer's key in the bundle file takes effect without
	// a restart (the file is checked at most once a second).
	writeFile(t, f.dir, "other.jwks", f.bundle)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(bundleFile, future, future); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded bundle", func() bool {
		_, err := reg.GetService("greeter")
		return err == nil
	})
}
