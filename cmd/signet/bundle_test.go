package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-micro/signet/verify"
)

// issueWith issues a greeter token for nodePub with issuerKey and returns
// its file.
func issueWith(t *testing.T, dir, name, issuerKey, nodePub string, extra ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	args := append([]string{"issue", "-key", issuerKey, "-node-pub", nodePub, "-sub", "greeter", "-services", "greeter", "-o", out}, extra...)
	runSignet(t, args...).mustSucceed(t, "issue "+name)
	return out
}

func TestBundleTwoKeysVerifyBoth(t *testing.T) {
	dir := t.TempDir()
	oldKey, oldPub := keyPair(t, dir, "issuer-old")
	newKey, newPub := keyPair(t, dir, "issuer-new")
	strayKey, _ := keyPair(t, dir, "issuer-stray")
	_, nodePub := keyPair(t, dir, "node")

	bundleFile := filepath.Join(dir, "bundle.jwks")
	r := runSignet(t, "bundle", "-o", bundleFile, oldPub, newPub).mustSucceed(t, "bundle")
	if !strings.Contains(r.stderr, "(2 keys)") {
		t.Errorf("bundle stderr %q does not report 2 keys", r.stderr)
	}

	b, err := verify.ParseBundle([]byte(readFile(t, bundleFile)))
	if err != nil {
		t.Fatalf("the bundle does not parse: %v", err)
	}
	for _, pub := range []string{oldPub, newPub} {
		if _, ok := b.Key(thumbprintOf(t, pub)); !ok {
			t.Errorf("the bundle has no key with the thumbprint of %s; ids %v", pub, b.KeyIDs())
		}
	}
	if strings.Contains(readFile(t, bundleFile), `"d"`) {
		t.Error("the bundle contains a private key member")
	}

	for name, key := range map[string]string{"old": oldKey, "new": newKey} {
		token := issueWith(t, dir, name+".jwt", key, nodePub)
		if r := runSignet(t, "inspect", "-bundle", bundleFile, token); r.code != exitOK || !strings.Contains(r.stdout, "valid: yes\n") {
			t.Errorf("token of the %s issuer key: exit status %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}

	stray := issueWith(t, dir, "stray.jwt", strayKey, nodePub)
	if r := runSignet(t, "inspect", "-bundle", bundleFile, stray); r.code != exitInvalid || !strings.Contains(r.stdout, "unknown-issuer-key") {
		t.Errorf("token of a key outside the bundle: exit status %d\n%s", r.code, r.stdout)
	}
}

func TestBundleKeyIDs(t *testing.T) {
	dir := t.TempDir()
	key1, pub1 := keyPair(t, dir, "issuer-1")
	_, pub2 := keyPair(t, dir, "issuer-2")
	_, nodePub := keyPair(t, dir, "node")

	r := runSignet(t, "bundle", "-kid", "prod-1,prod-2", pub1, pub2).mustSucceed(t, "bundle -kid")
	b, err := verify.ParseBundle([]byte(r.stdout))
	if err != nil {
		t.Fatalf("the bundle on stdout does not parse: %v\n%s", err, r.stdout)
	}
	if ids := b.KeyIDs(); len(ids) != 2 || ids[0] != "prod-1" || ids[1] != "prod-2" {
		t.Errorf("key ids = %v, want [prod-1 prod-2]", ids)
	}

	bundleFile := filepath.Join(dir, "bundle.jwks")
	if err := os.WriteFile(bundleFile, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	token := issueWith(t, dir, "t.jwt", key1, nodePub, "-kid", "prod-1")
	runSignet(t, "inspect", "-bundle", bundleFile, token).mustSucceed(t, "inspect a token with kid prod-1")

	// An existing JWK Set is an input too, so a bundle can be extended.
	_, pub3 := keyPair(t, dir, "issuer-3")
	extended := runSignet(t, "bundle", bundleFile, pub3).mustSucceed(t, "bundle extending a JWK Set")
	b, err = verify.ParseBundle([]byte(extended.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Key("prod-1"); !ok || len(b.KeyIDs()) != 3 {
		t.Errorf("extended bundle ids = %v, want prod-1, prod-2 and a thumbprint", b.KeyIDs())
	}
}

func TestBundleErrors(t *testing.T) {
	dir := t.TempDir()
	key1, pub1 := keyPair(t, dir, "issuer-1")
	_, pub2 := keyPair(t, dir, "issuer-2")
	existing := filepath.Join(dir, "bundle.jwks")
	if err := os.WriteFile(existing, []byte("old bundle"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := map[string]struct {
		args []string
		want string
	}{
		"no keys":           {[]string{"bundle"}, "at least one"},
		"private key":       {[]string{"bundle", key1}, "private key"},
		"same key twice":    {[]string{"bundle", pub1, pub1}, "appears in both"},
		"kid count":         {[]string{"bundle", "-kid", "a", pub1, pub2}, "one id for each file"},
		"existing output":   {[]string{"bundle", "-o", existing, pub1}, "-force"},
		"missing key file":  {[]string{"bundle", filepath.Join(dir, "none.pub")}, "none.pub"},
		"duplicate via kid": {[]string{"bundle", "-kid", "a,a", pub1, pub2}, "appears in both"},
	}
	for name, tc := range cases {
		r := runSignet(t, tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit status %d, stderr %q; want 2 and %q", name, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stdout+r.stderr, "-----BEGIN") {
			t.Errorf("%s: output shows key material", name)
		}
	}
	if got := readFile(t, existing); got != "old bundle" {
		t.Errorf("the existing bundle was changed to %q", got)
	}

	runSignet(t, "bundle", "-o", existing, "-force", pub1).mustSucceed(t, "bundle -force")
	if _, err := verify.ParseBundle([]byte(readFile(t, existing))); err != nil {
		t.Errorf("bundle -force did not write a bundle: %v", err)
	}
}
