package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/signing"
)

func TestKeygenWritesKeyPair(t *testing.T) {
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "node.key"), filepath.Join(dir, "node.pub")
	r := runSignet(t, "keygen", "-o", keyFile, "-pub", pubFile).mustSucceed(t, "keygen")

	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("private key mode = %v, want 0600", mode)
	}

	key, err := signing.ParsePrivateKeyPEM([]byte(readFile(t, keyFile)))
	if err != nil {
		t.Fatalf("private key does not parse: %v", err)
	}
	pub, err := (&command{}).readPublicKey(pubFile)
	if err != nil {
		t.Fatalf("public key does not parse: %v", err)
	}
	if !pub.Equal(key.Public()) {
		t.Error("the public key file does not hold the public half of the private key")
	}

	kid, err := jwk.Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, kid) {
		t.Errorf("stderr %q does not contain the thumbprint %s", r.stderr, kid)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing when -pub is given", r.stdout)
	}
}

func TestKeygenPublicKeyStdout(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "node.key")
	r := runSignet(t, "keygen", "-o", keyFile).mustSucceed(t, "keygen")

	key, err := signing.ParsePrivateKeyPEM([]byte(readFile(t, keyFile)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := signing.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if r.stdout != string(want) {
		t.Errorf("stdout = %q, want the public key PEM %q", r.stdout, want)
	}
	if strings.Contains(r.stdout, "PRIVATE") || strings.Contains(r.stderr, "PRIVATE") {
		t.Error("the private key appeared in the output")
	}
}

func TestKeygenNoOverwrite(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "node.key")
	if err := os.WriteFile(keyFile, []byte("existing key"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runSignet(t, "keygen", "-o", keyFile)
	if r.code != exitError {
		t.Errorf("exit status %d, want 2", r.code)
	}
	if !strings.Contains(r.stderr, keyFile) || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("stderr %q does not say that %s already exists", r.stderr, keyFile)
	}
	if got := readFile(t, keyFile); got != "existing key" {
		t.Errorf("the existing file was changed to %q", got)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
}

func TestKeygenNoOverwritePublic(t *testing.T) {
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "node.key"), filepath.Join(dir, "node.pub")
	if err := os.WriteFile(pubFile, []byte("existing public key"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := runSignet(t, "keygen", "-o", keyFile, "-pub", pubFile)
	if r.code != exitError || !strings.Contains(r.stderr, pubFile) {
		t.Errorf("exit status %d, stderr %q; want 2 naming %s", r.code, r.stderr, pubFile)
	}
	if _, err := os.Lstat(keyFile); !os.IsNotExist(err) {
		t.Errorf("a private key was written although its public key file exists (stat: %v)", err)
	}
	if got := readFile(t, pubFile); got != "existing public key" {
		t.Errorf("the existing public key file was changed to %q", got)
	}
}

func TestKeygenSymlinkTarget(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "elsewhere.key"), filepath.Join(dir, "node.key")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot create a symbolic link here: %v", err)
	}

	if r := runSignet(t, "keygen", "-o", link); r.code != exitError {
		t.Errorf("exit status %d for a dangling symbolic link, want 2; stderr %q", r.code, r.stderr)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("keygen wrote through the symbolic link to %s (stat: %v)", target, err)
	}
}

func TestKeygenUsageErrors(t *testing.T) {
	dir := t.TempDir()
	same := filepath.Join(dir, "k")
	cases := map[string][]string{
		"missing -o":      {"keygen"},
		"same file twice": {"keygen", "-o", same, "-pub", same},
		"positional":      {"keygen", "-o", filepath.Join(dir, "a"), "extra"},
	}
	for name, args := range cases {
		r := runSignet(t, args...)
		if r.code != exitError || !strings.HasPrefix(r.stderr, "signet keygen: ") {
			t.Errorf("%s: exit status %d, stderr %q; want 2 and a signet keygen error", name, r.code, r.stderr)
		}
	}
	if _, err := os.Lstat(same); !os.IsNotExist(err) {
		t.Errorf("keygen wrote %s although -o and -pub name the same file", same)
	}
}

func TestKeygenOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not on PATH")
	}

	dir := t.TempDir()
	keyFile, pubFile := keyPair(t, dir, "node")

	out, err := exec.Command(openssl, "pkey", "-in", keyFile, "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkey -in %s: %v\n%s", keyFile, err, out)
	}
	if !strings.Contains(string(out), "ED25519 Private-Key") {
		t.Errorf("openssl does not read an Ed25519 key:\n%s", out)
	}

	pubOut, err := exec.Command(openssl, "pkey", "-in", keyFile, "-pubout").Output()
	if err != nil {
		t.Fatalf("openssl pkey -pubout: %v", err)
	}
	if got := readFile(t, pubFile); got != string(pubOut) {
		t.Errorf("public key file:\n%s\nopenssl pkey -pubout:\n%s", got, pubOut)
	}

	// A key that openssl generated is accepted as an issuer key.
	opensslKey := filepath.Join(dir, "openssl.key")
	if out, err := exec.Command(openssl, "genpkey", "-algorithm", "ed25519", "-out", opensslKey).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	r := runSignet(t, "issue", "-key", opensslKey, "-node-pub", pubFile, "-sub", "greeter", "-services", "greeter")
	r.mustSucceed(t, "issue with an openssl key")
	if parts := strings.Split(strings.TrimSpace(r.stdout), "."); len(parts) != 3 {
		t.Errorf("issue printed %d dot-separated parts, want a JWT", len(parts))
	}
}
