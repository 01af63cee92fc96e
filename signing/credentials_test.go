package signing_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/signing"
)

func TestNewCredentialsRejects(t *testing.T) {
	f := newFixture(t)
	other := testid.NewNodeKey(t)
	h, c := f.issuer.Header(), f.issuer.Claims(t, f.creds.Key.Public().(ed25519.PublicKey), []string{"greeter"}, time.Hour)
	delete(c, "exp")
	noExp := f.issuer.SignRaw(t, h, c)
	h, c = f.issuer.Header(), f.issuer.Claims(t, f.creds.Key.Public().(ed25519.PublicKey), []string{"greeter"}, time.Hour)
	delete(c, "cnf")
	noCnf := f.issuer.SignRaw(t, h, c)

	cases := map[string]struct {
		key     ed25519.PrivateKey
		token   string
		mention string
	}{
		"key-token-mismatch": {other, f.creds.Token, "not the public half"},
		"short-key":          {ed25519.PrivateKey(make([]byte, 10)), f.creds.Token, "not an Ed25519"},
		"not-a-jwt":          {f.creds.Key, "hello", "not a JWT"},
		"empty-token":        {f.creds.Key, "", "not a JWT"},
		"no-exp":             {f.creds.Key, noExp, "no exp"},
		"no-cnf":             {f.creds.Key, noCnf, "cnf"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := signing.NewCredentials(tc.key, tc.token)
			if err == nil {
				t.Fatal("NewCredentials accepted it")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error contains the token")
			}
		})
	}
}

// writeNewer replaces a file's content and moves its modification time
// forward, so a reload sees the change within one clock tick.
func writeNewer(t *testing.T, path string, data []byte) {
	t.Helper()
	mod := time.Now().Add(-time.Hour)
	if info, err := os.Stat(path); err == nil {
		mod = info.ModTime().Add(time.Second)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func writeCredentialFiles(t *testing.T, dir string, creds *signing.Credentials) (keyPath, tokenPath string) {
	t.Helper()
	keyPath, tokenPath = filepath.Join(dir, "node.key"), filepath.Join(dir, "node.jwt")
	keyPEM, err := signing.MarshalPrivateKeyPEM(creds.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeNewer(t, keyPath, keyPEM)
	writeNewer(t, tokenPath, []byte(creds.Token+"\n"))
	return keyPath, tokenPath
}

func TestFileCredentialsRenewal(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	keyPath, tokenPath := writeCredentialFiles(t, dir, f.creds)

	logs := &testid.LogBuffer{}
	src, err := signing.NewFileCredentials(keyPath, tokenPath, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	src.SetInterval(0)
	signer := testid.Signer(t, src, f.clock.Now)
	v := f.issuer.Verifier(t, f.clock.Now)

	first, _, err := signer.Sign(service())
	if err != nil {
		t.Fatal(err)
	}

	// A renewed token for the same key: the next Sign re-signs with it,
	// long before half the record's lifetime.
	f.clock.Advance(time.Minute)
	renewed, err := f.issuer.Issue(signing.Identity{
		Subject: "greeter", NodeKey: f.creds.Key.Public().(ed25519.PublicKey), Services: []string{"greeter"}, Lifetime: 2 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	writeNewer(t, tokenPath, []byte(renewed))
	second, replaced, err := signer.Sign(service())
	if err != nil {
		t.Fatal(err)
	}
	if maps.Equal(first.Nodes[0].Metadata, second.Nodes[0].Metadata) {
		t.Fatal("record not re-signed after the token file was renewed")
	}
	if len(replaced) != 1 {
		t.Errorf("replaced = %v, want the node", replaced)
	}
	if got := joinToken(second.Nodes[0].Metadata); got != renewed {
		t.Fatal("re-signed record does not carry the renewed token")
	}
	if _, err := v.VerifyNode(second.Name, second.Version, second.Nodes[0]); err != nil {
		t.Fatalf("re-signed record rejected: %v", err)
	}

	// Garbage in the token file keeps the last good credentials, logged
	// once with both file names and without the token.
	for _, garbage := range []string{"", "not a token", "a.b", renewed + " " + renewed} {
		writeNewer(t, tokenPath, []byte(garbage))
		third, _, err := signer.Sign(service())
		if err != nil {
			t.Fatalf("Sign after the token file held %q: %v", garbage, err)
		}
		if !maps.Equal(third.Nodes[0].Metadata, second.Nodes[0].Metadata) {
			t.Fatalf("record changed after the token file held %q", garbage)
		}
	}
	if strings.Contains(logs.String(), renewed) || strings.Contains(logs.String(), f.creds.Token) {
		t.Error("log contains a token")
	}
	if !strings.Contains(logs.String(), tokenPath) {
		t.Errorf("log does not name %s:\n%s", tokenPath, logs)
	}

	// A valid token for another key does not fit the key file: the last
	// good pair stays, and the mismatch is logged.
	otherNode := f.issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)
	writeNewer(t, tokenPath, []byte(otherNode.Token))
	got, err := src.Credentials()
	if err != nil || got.Token != renewed {
		t.Fatalf("Credentials after a mismatched token = %v, %v; want the renewed pair", got, err)
	}
	if !strings.Contains(logs.String(), "do not fit together") {
		t.Errorf("the mismatch was not logged:\n%s", logs)
	}

	// Rotating the key and the token together is picked up.
	writeCredentialFiles(t, dir, otherNode)
	got, err = src.Credentials()
	if err != nil || got.Token != otherNode.Token || !got.Key.Equal(otherNode.Key) {
		t.Fatal("rotated key and token were not picked up")
	}
}

func joinToken(md map[string]string) string {
	s, err := record.Parse(md)
	if err != nil {
		return ""
	}
	return s.Token
}

func TestNewFileCredentialsErrors(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	keyPath, tokenPath := writeCredentialFiles(t, dir, f.creds)
	other := testid.NewNodeKey(t)
	otherPEM, _ := signing.MarshalPrivateKeyPEM(other)
	otherKey := filepath.Join(dir, "other.key")
	writeNewer(t, otherKey, otherPEM)

	logs := (&testid.LogBuffer{}).Logger()
	if _, err := signing.NewFileCredentials(filepath.Join(dir, "missing"), tokenPath, logs); err == nil {
		t.Error("missing key file accepted")
	}
	if _, err := signing.NewFileCredentials(keyPath, filepath.Join(dir, "missing"), logs); err == nil {
		t.Error("missing token file accepted")
	}
	_, err := signing.NewFileCredentials(otherKey, tokenPath, logs)
	if err == nil || !strings.Contains(err.Error(), otherKey) || !strings.Contains(err.Error(), tokenPath) {
		t.Errorf("mismatched pair err = %v; want both paths named", err)
	}
	if err != nil && (strings.Contains(err.Error(), f.creds.Token) || strings.Contains(err.Error(), string(otherPEM))) {
		t.Error("error contains a secret")
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	data, err := os.ReadFile("testdata/openssl-ed25519.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParsePrivateKeyPEM(data)
	if err != nil {
		t.Fatalf("key written by `openssl genpkey -algorithm ed25519`: %v", err)
	}
	pubPEM, err := os.ReadFile("testdata/openssl-ed25519.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatal("parsed key does not match `openssl pkey -pubout`")
	}

	// MarshalPrivateKeyPEM writes what ParsePrivateKeyPEM reads.
	_, fresh, _ := ed25519.GenerateKey(rand.Reader)
	out, err := signing.MarshalPrivateKeyPEM(fresh)
	if err != nil {
		t.Fatal(err)
	}
	back, err := signing.ParsePrivateKeyPEM(out)
	if err != nil || !back.Equal(fresh) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestParsePrivateKeyPEMRejects(t *testing.T) {
	p256, err := os.ReadFile("testdata/openssl-p256.pem")
	if err != nil {
		t.Fatal(err)
	}
	body := "MC4CAQAwBQYDK2VwBCIEILaqH/C4pYFzIGdHrl+3mK8XLjZ9V9eoo691TutfrtFr"
	cases := map[string]struct {
		data    string
		mention string
	}{
		"empty":      {"", "no PEM block"},
		"garbage":    {"not a key", "no PEM block"},
		"public-key": {"-----BEGIN PUBLIC KEY-----\n" + body + "\n-----END PUBLIC KEY-----\n", `"PUBLIC KEY"`},
		"encrypted":  {"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body + "\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
		"bad-pkcs8":  {"-----BEGIN PRIVATE KEY-----\n" + body[:40] + "\n-----END PRIVATE KEY-----\n", "PKCS#8"},
		"ec-key":     {string(p256), "Ed25519"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := signing.ParsePrivateKeyPEM([]byte(tc.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), body[10:30]) || strings.Contains(err.Error(), "MIGHAgEA") {
				t.Errorf("error %q contains key material", err)
			}
		})
	}
}

func TestIssueRejects(t *testing.T) {
	f := newFixture(t)
	pub := f.creds.Key.Public().(ed25519.PublicKey)
	ok := signing.Identity{Subject: "s", NodeKey: pub, Services: []string{"s"}, Lifetime: time.Hour}
	cases := map[string]func(id *signing.Identity, is *signing.Issuer){
		"no-subject":    func(id *signing.Identity, is *signing.Issuer) { id.Subject = "" },
		"no-node-key":   func(id *signing.Identity, is *signing.Issuer) { id.NodeKey = nil },
		"no-services":   func(id *signing.Identity, is *signing.Issuer) { id.Services = nil },
		"bad-pattern":   func(id *signing.Identity, is *signing.Issuer) { id.Services = []string{"*s"} },
		"empty-pattern": func(id *signing.Identity, is *signing.Issuer) { id.Services = []string{""} },
		"bad-topic":     func(id *signing.Identity, is *signing.Issuer) { id.Topics = []string{"a*b"} },
		"zero-lifetime": func(id *signing.Identity, is *signing.Issuer) { id.Lifetime = 0 },
		"no-issuer-key": func(id *signing.Identity, is *signing.Issuer) { is.Key = nil },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			id, is := ok, *f.issuer.Issuer
			edit(&id, &is)
			if _, err := is.Issue(id); err == nil {
				t.Fatal("Issue accepted it")
			}
		})
	}

	token, err := f.issuer.Issue(ok)
	if err != nil {
		t.Fatal(err)
	}
	v := f.issuer.Verifier(t, f.clock.Now)
	id, err := v.VerifyToken(token)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.TokenID) != 32 || id.Subject != "s" || !id.NodeKey.Equal(pub) {
		t.Errorf("issued identity = %+v; want a 128-bit hex jti, subject s and the node key", id)
	}
}

func TestMatchAny(t *testing.T) {
	cases := []struct {
		patterns []string
		name     string
		want     bool
	}{
		{[]string{"greeter"}, "greeter", true},
		{[]string{"greeter"}, "greeter2", false},
		{[]string{"greeter"}, "Greeter", false},
		{[]string{"greeter*"}, "greeter2", true},
		{[]string{"greeter*"}, "greeter", true},
		{[]string{"greeter.*"}, "greeter", false},
		{[]string{"*"}, "anything", true},
		{[]string{"*"}, "", false},
		{nil, "greeter", false},
		{[]string{""}, "", false},
		{[]string{"a", "b*"}, "bc", true},
	}
	for _, tc := range cases {
		if got := signing.MatchAny(tc.patterns, tc.name); got != tc.want {
			t.Errorf("MatchAny(%q, %q) = %v, want %v", tc.patterns, tc.name, got, tc.want)
		}
	}
	if err := signing.CheckPatterns("services", []string{"a*", "*", "b"}); err != nil {
		t.Errorf("CheckPatterns rejected valid patterns: %v", err)
	}
	for _, bad := range [][]string{{""}, {"*a"}, {"a**"}, {"a*b"}} {
		if err := signing.CheckPatterns("services", bad); err == nil {
			t.Errorf("CheckPatterns accepted %q", bad)
		}
	}
}
