package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/verify"
)

func TestParseRevocations(t *testing.T) {
	list, err := verify.ParseRevocations([]byte("# revoked after the incident\n\njti abc123\n  kid old-issuer  \r\njti def456\n"))
	if err != nil {
		t.Fatalf("ParseRevocations: %v", err)
	}
	if list.Len() != 3 {
		t.Errorf("Len = %d, want 3", list.Len())
	}
	for _, tc := range []struct {
		jti, kid string
		want     bool
	}{
		{"abc123", "", true},
		{"def456", "k", true},
		{"", "old-issuer", true},
		{"old-issuer", "", false},
		{"", "abc123", false},
		{"abc", "old", false},
		{"", "", false},
	} {
		if got := list.Revoked(tc.jti, tc.kid); got != tc.want {
			t.Errorf("Revoked(%q, %q) = %v, want %v", tc.jti, tc.kid, got, tc.want)
		}
	}

	var none *verify.Revocations
	if none.Revoked("abc123", "old-issuer") || none.Len() != 0 {
		t.Error("a nil list revokes something")
	}
	empty, err := verify.ParseRevocations(nil)
	if err != nil || empty.Len() != 0 {
		t.Errorf("ParseRevocations(nil) = %v, %v", empty, err)
	}
}

func TestParseRevocationsRejects(t *testing.T) {
	for _, line := range []string{
		"abc123",
		"jti",
		"jti ",
		"jti a b",
		"jti\tabc",
		"sub greeter",
		"JTI abc",
		"kid a\tb",
		strings.Repeat("x", 100),
	} {
		_, err := verify.ParseRevocations([]byte("jti ok\n" + line + "\n"))
		if err == nil {
			t.Errorf("ParseRevocations accepted line %q", line)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") {
			t.Errorf("error %q does not name line 2", err)
		}
		if len(err.Error()) > 300 {
			t.Errorf("error is %d bytes", len(err.Error()))
		}
	}

	// A line longer than bufio.Scanner's buffer is an error, not a silent
	// end of the list.
	if _, err := verify.ParseRevocations([]byte("jti a\njti " + strings.Repeat("x", 70000) + "\njti b\n")); err == nil {
		t.Error("ParseRevocations accepted a 70 kB line")
	}
}

func TestFileRevocationsReload(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte("# none yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testid.LogBuffer{}
	src, err := verify.NewFileRevocations(path, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	src.SetInterval(0)
	v := f.newVerifier(t, verify.WithRevocations(src))
	signed := f.sign(t, service())

	id, err := v.VerifyToken(f.creds.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0]); err != nil {
		t.Fatal(err)
	}

	writeNewer(t, path, []byte("jti "+id.TokenID+"\n"))
	_, err = v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
	wantReason(t, err, verify.ErrRevoked)

	// A broken list keeps the last good one: the node stays revoked.
	writeNewer(t, path, []byte("this is not a revocation list\n"))
	_, err = v.VerifyNode(signed.Name, signed.Version, signed.Nodes[0])
	wantReason(t, err, verify.ErrRevoked)
	if !strings.Contains(logs.String(), path) {
		t.Errorf("log does not name the broken file:\n%s", logs)
	}
}

func TestFileRevocationsEmptiedKeepsList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations.txt")
	if err := os.WriteFile(path, []byte("jti leaked-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := verify.NewFileRevocations(path, (&testid.LogBuffer{}).Logger())
	if err != nil {
		t.Fatal(err)
	}
	src.SetInterval(0)

	// A rewrite caught halfway leaves the file empty for a moment.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	list, _ := src.Revocations()
	if !list.Revoked("leaked-1", "") {
		t.Fatal("an emptied revocation file lifted the revocation of leaked-1")
	}

	// A comment line is an explicit empty list.
	if err := os.WriteFile(path, []byte("# no revocations\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, _ = src.Revocations()
	if list.Revoked("leaked-1", "") {
		t.Fatal("a revocation file with only a comment still revokes leaked-1")
	}
}
