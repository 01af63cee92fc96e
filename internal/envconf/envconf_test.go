package envconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func lookup(env map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestSecret(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want Setting
	}{
		{"unset", map[string]string{}, Setting{}},
		{"empty", map[string]string{"KEY": "  ", "KEY_FILE": ""}, Setting{}},
		{"inline", map[string]string{"KEY": " value\n"}, Setting{Name: "KEY", Value: "value"}},
		{"file", map[string]string{"KEY_FILE": " /run/secrets/key "}, Setting{Name: "KEY_FILE", Path: "/run/secrets/key"}},
		{"file-and-empty-inline", map[string]string{"KEY": "", "KEY_FILE": "/k"}, Setting{Name: "KEY_FILE", Path: "/k"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookup(tc.env).Secret("KEY")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Secret = %+v, want %+v", got, tc.want)
			}
			if got.IsSet() != (tc.want.Value != "" || tc.want.Path != "") {
				t.Fatalf("IsSet = %v", got.IsSet())
			}
		})
	}
}

func TestSecretBothSet(t *testing.T) {
	_, err := lookup(map[string]string{"KEY": "secret-value", "KEY_FILE": "/k"}).Secret("KEY")
	if err == nil {
		t.Fatal("Secret accepted both KEY and KEY_FILE")
	}
	for _, want := range []string{"KEY", "KEY_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret-value") {
		t.Errorf("error %q contains the secret", err)
	}
}

func TestSettingRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("from file"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Setting{Name: "KEY_FILE", Path: path}.Read()
	if err != nil || string(got) != "from file" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	got, err = Setting{Name: "KEY", Value: "inline"}.Read()
	if err != nil || string(got) != "inline" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	_, err = Setting{Name: "KEY_FILE", Path: filepath.Join(t.TempDir(), "missing")}.Read()
	if err == nil || !strings.Contains(err.Error(), "KEY_FILE") {
		t.Fatalf("Read of a missing file err = %v; want it to name KEY_FILE", err)
	}
}

func TestStringListDurationInt(t *testing.T) {
	l := lookup(map[string]string{
		"S": " x ", "EMPTY": " ", "L": " a, ,b,, c ", "D": "90s", "BAD_D": "ten", "I": "42", "BAD_I": "4.2",
	})
	if got := l.String("S", "def"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if got := l.String("EMPTY", "def"); got != "def" {
		t.Errorf("String of empty = %q, want default", got)
	}
	if got := strings.Join(l.List("L", nil), "|"); got != "a|b|c" {
		t.Errorf("List = %q", got)
	}
	if got := l.List("MISSING", []string{"d"}); len(got) != 1 || got[0] != "d" {
		t.Errorf("List default = %q", got)
	}
	if d, err := l.Duration("D", 0); err != nil || d != 90*time.Second {
		t.Errorf("Duration = %v, %v", d, err)
	}
	if d, err := l.Duration("MISSING", time.Minute); err != nil || d != time.Minute {
		t.Errorf("Duration default = %v, %v", d, err)
	}
	if _, err := l.Duration("BAD_D", 0); err == nil || !strings.Contains(err.Error(), "BAD_D") || !strings.Contains(err.Error(), "ten") {
		t.Errorf("Duration error = %v; want it to name the variable and value", err)
	}
	if n, err := l.Int("I", 0); err != nil || n != 42 {
		t.Errorf("Int = %v, %v", n, err)
	}
	if _, err := l.Int("BAD_I", 0); err == nil || !strings.Contains(err.Error(), "BAD_I") {
		t.Errorf("Int error = %v; want it to name the variable", err)
	}
}

func TestUnknownNames(t *testing.T) {
	got := Unknown([]string{
		"MICRO_REGISTRY=etcd",
		"MICRO_REGISTRY_TRUST_BUNDLE_FILE=/etc/signet/bundle.jwks",
		"MICRO_REGISTRY_REVOCATION_FILE=/etc/signet/revocations.txt",
		"MICRO_REGISTRY_TLS_CA_FILE=/etc/ca.pem",
		"MICRO_SERVER_ADDRESS=127.0.0.1:0",
		"PATH=/usr/bin",
	})
	if len(got) != 1 || got[0] != "MICRO_REGISTRY_REVOCATION_FILE" {
		t.Fatalf("Unknown = %q, want only the misspelt MICRO_REGISTRY_REVOCATION_FILE", got)
	}
}
