package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/internal/testid"
)

// issuerSetup is an issuer key pair, a node key pair and a trust bundle
// with the issuer key, all written by signet in one directory.
type issuerSetup struct {
	dir                string
	issuerKey, nodeKey string
	issuerPub, nodePub string
	bundle             string
	issuerKID, nodeKID string
}

func newIssuerSetup(t *testing.T) *issuerSetup {
	t.Helper()
	s := &issuerSetup{dir: t.TempDir()}
	s.issuerKey, s.issuerPub = keyPair(t, s.dir, "issuer")
	s.nodeKey, s.nodePub = keyPair(t, s.dir, "node")
	s.bundle = filepath.Join(s.dir, "bundle.jwks")
	runSignet(t, "bundle", "-o", s.bundle, s.issuerPub).mustSucceed(t, "bundle")
	s.issuerKID, s.nodeKID = thumbprintOf(t, s.issuerPub), thumbprintOf(t, s.nodePub)
	return s
}

func thumbprintOf(t *testing.T, pubFile string) string {
	t.Helper()
	pub, err := (&command{}).readPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := jwk.Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// issue issues a greeter token into the file name in s.dir.
func (s *issuerSetup) issue(t *testing.T, name string, extra ...string) (string, result) {
	t.Helper()
	out := filepath.Join(s.dir, name)
	args := append([]string{"issue", "-key", s.issuerKey, "-node-pub", s.nodePub, "-sub", "greeter",
		"-services", "greeter,greeter.*", "-o", out}, extra...)
	r := runSignet(t, args...).mustSucceed(t, "issue")
	return out, r
}

func TestIssueInspectRoundTrip(t *testing.T) {
	s := newIssuerSetup(t)
	tokenFile, r := s.issue(t, "greeter.jwt", "-topics", "orders.*", "-iss", "ops", "-lifetime", "2h")

	info, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("token file mode = %v, want 0600", mode)
	}
	for _, want := range []string{"Token ID (jti): ", "Issuer key ID (kid): " + s.issuerKID, "Expires: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("issue stderr %q lacks %q", r.stderr, want)
		}
	}
	if !strings.Contains(r.stderr, "micro.http.broker") {
		t.Errorf("issue with topics but no broker service did not warn: %q", r.stderr)
	}
	token := strings.TrimSpace(readFile(t, tokenFile))

	got := runSignet(t, "inspect", "-bundle", s.bundle, "-iss", "ops", tokenFile).mustSucceed(t, "inspect")
	for _, want := range []string{
		"alg: EdDSA\n",
		"kid: " + s.issuerKID + "\n",
		"iss: ops\n",
		"sub: greeter\n",
		"aud: signet\n",
		"services: greeter, greeter.*\n",
		"topics: orders.*\n",
		"cnf thumbprint: " + s.nodeKID + "\n",
		"valid: yes\n",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, got.stdout)
		}
	}
	if strings.Contains(got.stdout, token) || strings.Contains(got.stderr, token) {
		t.Error("inspect printed the whole token")
	}
	for _, part := range strings.Split(token, ".") {
		if strings.Contains(got.stdout, part) {
			t.Errorf("inspect printed a whole token part (%d characters)", len(part))
		}
	}

	asJSON := runSignet(t, "inspect", "-json", "-bundle", s.bundle, tokenFile).mustSucceed(t, "inspect -json")
	var report tokenReport
	if err := json.Unmarshal([]byte(asJSON.stdout), &report); err != nil {
		t.Fatalf("inspect -json output is not JSON: %v\n%s", err, asJSON.stdout)
	}
	if !report.Valid || report.Claims.Sub != "greeter" || report.CnfThumbprint != s.nodeKID || report.Header.Kid != s.issuerKID {
		t.Errorf("inspect -json = %+v", report)
	}
	exp, err := time.Parse(time.RFC3339, report.Claims.Exp)
	if err != nil {
		t.Fatalf("exp %q is not RFC 3339: %v", report.Claims.Exp, err)
	}
	if d := time.Until(exp); d < time.Hour+55*time.Minute || d > 2*time.Hour {
		t.Errorf("token expires in %v, want about 2h", d)
	}
}

func TestIssueNodeKeyFlag(t *testing.T) {
	s := newIssuerSetup(t)
	r := runSignet(t, "issue", "-key", s.issuerKey, "-node-key", s.nodeKey, "-sub", "greeter", "-services", "greeter")
	r.mustSucceed(t, "issue -node-key")

	c := &command{stdin: strings.NewReader(r.stdout), lookupEnv: os.LookupEnv, now: time.Now}
	got := runCommand(c, "inspect", "-bundle", s.bundle, "-")
	got.mustSucceed(t, "inspect from standard input")
	if !strings.Contains(got.stdout, "cnf thumbprint: "+s.nodeKID+"\n") {
		t.Errorf("the token from -node-key does not carry the node's public key:\n%s", got.stdout)
	}
}

func TestIssueNoOverwrite(t *testing.T) {
	s := newIssuerSetup(t)
	tokenFile, _ := s.issue(t, "greeter.jwt")
	first := readFile(t, tokenFile)

	args := []string{"issue", "-key", s.issuerKey, "-node-pub", s.nodePub, "-sub", "greeter", "-services", "greeter", "-o", tokenFile}
	r := runSignet(t, args...)
	if r.code != exitError || !strings.Contains(r.stderr, tokenFile+" already exists") || !strings.Contains(r.stderr, "-force") {
		t.Errorf("second issue: exit status %d, stderr %q; want 2, naming the file and -force", r.code, r.stderr)
	}
	if readFile(t, tokenFile) != first {
		t.Error("the existing token file was overwritten without -force")
	}

	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	runSignet(t, append(args, "-force")...).mustSucceed(t, "issue -force")
	if readFile(t, tokenFile) == first {
		t.Error("issue -force did not replace the token")
	}
	info, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("replaced token file mode = %v, want 0600", mode)
	}
	leftovers, _ := filepath.Glob(filepath.Join(s.dir, ".greeter.jwt.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("issue -force left temporary files: %v", leftovers)
	}
}

func TestIssueUsageErrors(t *testing.T) {
	s := newIssuerSetup(t)
	base := []string{"issue", "-key", s.issuerKey, "-sub", "greeter", "-services", "greeter"}
	cases := map[string]struct {
		args []string
		want string
	}{
		"no node key":          {base, "-node-pub"},
		"both node keys":       {append(base, "-node-pub", s.nodePub, "-node-key", s.nodeKey), "only one"},
		"private as public":    {append(base, "-node-pub", s.nodeKey), "-node-key"},
		"no subject":           {[]string{"issue", "-key", s.issuerKey, "-node-pub", s.nodePub, "-services", "greeter"}, "-sub"},
		"no services":          {[]string{"issue", "-key", s.issuerKey, "-node-pub", s.nodePub, "-sub", "greeter"}, "-services"},
		"bad pattern":          {[]string{"issue", "-key", s.issuerKey, "-node-pub", s.nodePub, "-sub", "g", "-services", "a*b"}, "a*b"},
		"empty list item":      {append(base, "-node-pub", s.nodePub, "-topics", "a,,b"), "empty item"},
		"negative lifetime":    {append(base, "-node-pub", s.nodePub, "-lifetime", "-1h"), "-lifetime"},
		"issuer key is node's": {[]string{"issue", "-key", s.nodeKey, "-node-key", s.nodeKey, "-sub", "g", "-services", "g"}, "own key"},
		"public issuer key":    {append([]string{"issue", "-key", s.issuerPub, "-node-pub", s.nodePub}, base[3:]...), s.issuerPub},
		"missing issuer key":   {append([]string{"issue", "-key", filepath.Join(s.dir, "none.key"), "-node-pub", s.nodePub}, base[3:]...), "none.key"},
		"force without -o":     {append(base, "-node-pub", s.nodePub, "-force"), "-force needs -o"},
	}
	for name, tc := range cases {
		r := runSignet(t, tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit status %d, stderr %q; want 2 and %q", name, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "-----BEGIN") {
			t.Errorf("%s: the error shows key material: %q", name, r.stderr)
		}
	}
}

// tamper returns token with its claims changed by edit and the original
// signature kept.
func tamper(t *testing.T, token string, edit func(string) string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(payload))
	if changed == string(payload) {
		t.Fatalf("the edit did not change the claims %s", payload)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(changed))
	return strings.Join(parts, ".")
}

func TestInspectTamperedToken(t *testing.T) {
	s := newIssuerSetup(t)
	tokenFile, _ := s.issue(t, "greeter.jwt")
	token := strings.TrimSpace(readFile(t, tokenFile))

	forged := tamper(t, token, func(claims string) string {
		return strings.Replace(claims, `"services":["greeter","greeter.*"]`, `"services":["*"]`, 1)
	})
	forgedFile := filepath.Join(s.dir, "forged.jwt")
	if err := os.WriteFile(forgedFile, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runSignet(t, "inspect", "-bundle", s.bundle, forgedFile)
	if r.code != exitInvalid {
		t.Errorf("exit status %d, want 1", r.code)
	}
	if !strings.Contains(r.stdout, "valid: no (token-bad-signature: ") {
		t.Errorf("inspect of a tampered token does not give the reason:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "services: *\n") {
		t.Errorf("inspect does not show the tampered claims:\n%s", r.stdout)
	}

	r = runSignet(t, "inspect", "-json", "-bundle", s.bundle, forgedFile)
	var report tokenReport
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("inspect -json output is not JSON: %v\n%s", err, r.stdout)
	}
	if report.Valid || report.Reason != "token-bad-signature" || report.Error == "" {
		t.Errorf("inspect -json of a tampered token: valid %v, reason %q, error %q", report.Valid, report.Reason, report.Error)
	}
}

func TestInspectInvalidReasons(t *testing.T) {
	s := newIssuerSetup(t)
	tokenFile, _ := s.issue(t, "greeter.jwt", "-lifetime", "1h")
	opsToken, _ := s.issue(t, "ops.jwt", "-iss", "ops")
	_, otherPub := keyPair(t, s.dir, "other-issuer")
	otherBundle := filepath.Join(s.dir, "other.jwks")
	runSignet(t, "bundle", "-o", otherBundle, otherPub).mustSucceed(t, "bundle")

	garbage := filepath.Join(s.dir, "garbage.jwt")
	if err := os.WriteFile(garbage, []byte("not a token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	revocations := filepath.Join(s.dir, "revoked.txt")
	if err := os.WriteFile(revocations, []byte("kid "+s.issuerKID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	clock := testid.NewClock(time.Now().Add(2 * time.Hour))
	later := &command{lookupEnv: os.LookupEnv, now: clock.Now}

	cases := map[string]struct {
		c    *command
		args []string
		want string
	}{
		"untrusted issuer": {nil, []string{"-bundle", otherBundle, tokenFile}, "unknown-issuer-key"},
		"wrong audience":   {nil, []string{"-bundle", s.bundle, "-aud", "billing", tokenFile}, "wrong-audience"},
		"wrong issuer":     {nil, []string{"-bundle", s.bundle, "-iss", "someone", opsToken}, "wrong-issuer"},
		"revoked key":      {nil, []string{"-bundle", s.bundle, "-revocations", revocations, tokenFile}, "revoked"},
		"expired":          {later, []string{"-bundle", s.bundle, tokenFile}, "token-expired"},
		"not a JWT":        {nil, []string{"-bundle", s.bundle, garbage}, "token-malformed"},
	}
	for name, tc := range cases {
		var r result
		if tc.c == nil {
			r = runSignet(t, append([]string{"inspect"}, tc.args...)...)
		} else {
			r = runCommand(tc.c, append([]string{"inspect"}, tc.args...)...)
		}
		if r.code != exitInvalid || !strings.Contains(r.stdout, "valid: no ("+tc.want+": ") {
			t.Errorf("%s: exit status %d, stdout:\n%s\nwant 1 and reason %s", name, r.code, r.stdout, tc.want)
		}
	}
}

func TestInspectUsageErrors(t *testing.T) {
	s := newIssuerSetup(t)
	tokenFile, _ := s.issue(t, "greeter.jwt")
	empty := filepath.Join(s.dir, "empty.jwt")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := map[string]struct {
		args []string
		want string
	}{
		"no bundle":        {[]string{"inspect", tokenFile}, "-bundle is required"},
		"no token":         {[]string{"inspect", "-bundle", s.bundle}, "token file"},
		"two tokens":       {[]string{"inspect", "-bundle", s.bundle, tokenFile, tokenFile}, "one token file"},
		"private bundle":   {[]string{"inspect", "-bundle", s.issuerKey, tokenFile}, "private key"},
		"missing bundle":   {[]string{"inspect", "-bundle", filepath.Join(s.dir, "none.jwks"), tokenFile}, "none.jwks"},
		"empty token file": {[]string{"inspect", "-bundle", s.bundle, empty}, "empty.jwt is empty"},
		"bad algorithm":    {[]string{"inspect", "-bundle", s.bundle, "-alg", "HS256", tokenFile}, "HS256"},
	}
	for name, tc := range cases {
		r := runSignet(t, tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit status %d, stderr %q; want 2 and %q", name, r.code, r.stderr, tc.want)
		}
	}
}

func TestInspectQuotesClaims(t *testing.T) {
	s := newIssuerSetup(t)
	r := runSignet(t, "issue", "-key", s.issuerKey, "-node-pub", s.nodePub, "-sub", "evil\nvalid: yes", "-services", "greeter")
	r.mustSucceed(t, "issue")

	c := &command{stdin: bytes.NewBufferString(r.stdout), lookupEnv: os.LookupEnv, now: time.Now}
	got := runCommand(c, "inspect", "-bundle", s.bundle, "-aud", "other", "-")
	if strings.Contains(got.stdout, "\nvalid: yes") {
		t.Errorf("a subject with a newline faked a line of the report:\n%s", got.stdout)
	}
	if !strings.Contains(got.stdout, `sub: "evil\nvalid: yes"`) {
		t.Errorf("the subject is not printed quoted:\n%s", got.stdout)
	}
}
