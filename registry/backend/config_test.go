package backend

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Secret values used across the tests, so that each test can check that
// none of them appears in an error or a log line.
const (
	testToken    = "tok-3f9c1d7e-secret-consul-acl"
	testPassword = "pw-b81e44a0-secret-etcd"
	testUsername = "signet-user"
)

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func assertNoSecret(t *testing.T, text string) {
	t.Helper()
	for _, secret := range []string{testToken, testPassword} {
		if strings.Contains(text, secret) {
			t.Errorf("text contains a secret: %s", text)
		}
	}
}

func TestConfigFromLookupEveryVariable(t *testing.T) {
	cfg, err := ConfigFromLookup(lookupFrom(map[string]string{
		EnvRegistry:            " Etcd ",
		EnvAddress:             "127.0.0.1:2379, 127.0.0.1:2380,,",
		EnvTLSCAFile:           "/etc/ca.pem",
		EnvTLSCertFile:         "/etc/client.pem",
		EnvTLSKeyFile:          "/etc/client-key.pem",
		EnvTLSServerName:       "etcd.internal",
		EnvConsulToken:         testToken,
		EnvEtcdUsername:        testUsername,
		EnvEtcdPassword:        testPassword,
		EnvKubernetesNamespace: "apps",
		EnvTimeout:             "30s",
	}))
	if err != nil {
		t.Fatal(err)
	}

	want := Config{
		Registry:            "etcd",
		Addresses:           []string{"127.0.0.1:2379", "127.0.0.1:2380"},
		TLSCAFile:           "/etc/ca.pem",
		TLSCertFile:         "/etc/client.pem",
		TLSKeyFile:          "/etc/client-key.pem",
		TLSServerName:       "etcd.internal",
		ConsulToken:         testToken,
		EtcdUsername:        testUsername,
		EtcdPassword:        testPassword,
		KubernetesNamespace: "apps",
	}
	if cfg.Registry != want.Registry {
		t.Errorf("Registry = %q, want %q", cfg.Registry, want.Registry)
	}
	if !slices.Equal(cfg.Addresses, want.Addresses) {
		t.Errorf("Addresses = %q, want %q", cfg.Addresses, want.Addresses)
	}
	if cfg.TLSCAFile != want.TLSCAFile {
		t.Errorf("TLSCAFile = %q, want %q", cfg.TLSCAFile, want.TLSCAFile)
	}
	if cfg.TLSCertFile != want.TLSCertFile {
		t.Errorf("TLSCertFile = %q, want %q", cfg.TLSCertFile, want.TLSCertFile)
	}
	if cfg.TLSKeyFile != want.TLSKeyFile {
		t.Errorf("TLSKeyFile = %q, want %q", cfg.TLSKeyFile, want.TLSKeyFile)
	}
	if cfg.TLSServerName != want.TLSServerName {
		t.Errorf("TLSServerName = %q, want %q", cfg.TLSServerName, want.TLSServerName)
	}
	if cfg.ConsulToken != want.ConsulToken {
		t.Errorf("ConsulToken is not the value of %s", EnvConsulToken)
	}
	if cfg.EtcdUsername != want.EtcdUsername {
		t.Errorf("EtcdUsername = %q, want %q", cfg.EtcdUsername, want.EtcdUsername)
	}
	if cfg.EtcdPassword != want.EtcdPassword {
		t.Errorf("EtcdPassword is not the value of %s", EnvEtcdPassword)
	}
	if cfg.KubernetesNamespace != want.KubernetesNamespace {
		t.Errorf("KubernetesNamespace = %q, want %q", cfg.KubernetesNamespace, want.KubernetesNamespace)
	}
	if cfg.Timeout != 30*time.Second {
		t.Errorf("Timeout = %v, want 30s", cfg.Timeout)
	}
}

func TestConfigFromLookupTimeoutInvalid(t *testing.T) {
	_, err := ConfigFromLookup(lookupFrom(map[string]string{EnvTimeout: "5"}))
	if err == nil {
		t.Fatal("ConfigFromLookup accepted a timeout without a unit")
	}
	for _, want := range []string{"backend: ", EnvTimeout, `"5"`, "duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestConfigFromLookupEmpty(t *testing.T) {
	cfg, err := ConfigFromLookup(lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Registry != "" {
		t.Errorf("Registry = %q with nothing set, want empty (no default)", cfg.Registry)
	}
	if len(cfg.Addresses) != 0 {
		t.Errorf("Addresses = %q with nothing set, want none (no default)", cfg.Addresses)
	}
}

func TestConfigFromLookupSecretFiles(t *testing.T) {
	tokenFile := writeFile(t, "token", testToken+"\n")
	userFile := writeFile(t, "user", testUsername+"\n")
	passwordFile := writeFile(t, "password", "  "+testPassword+"\r\n")

	cfg, err := ConfigFromLookup(lookupFrom(map[string]string{
		EnvConsulToken + "_FILE":  tokenFile,
		EnvEtcdUsername + "_FILE": userFile,
		EnvEtcdPassword + "_FILE": passwordFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConsulToken != testToken {
		t.Errorf("ConsulToken is not the trimmed content of %s_FILE", EnvConsulToken)
	}
	if cfg.EtcdUsername != testUsername {
		t.Errorf("EtcdUsername = %q, want %q", cfg.EtcdUsername, testUsername)
	}
	if cfg.EtcdPassword != testPassword {
		t.Errorf("EtcdPassword is not the trimmed content of %s_FILE", EnvEtcdPassword)
	}
}

func TestConfigFromLookupSecretErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	empty := writeFile(t, "empty", " \n")

	for _, name := range []string{EnvConsulToken, EnvEtcdUsername, EnvEtcdPassword} {
		cases := []struct {
			label string
			env   map[string]string
			want  []string
		}{
			{"both", map[string]string{name: testPassword, name + "_FILE": writeFile(t, "secret", testToken)}, []string{name, name + "_FILE", "set only one"}},
			{"missing file", map[string]string{name + "_FILE": missing}, []string{name + "_FILE", missing}},
			{"empty file", map[string]string{name + "_FILE": empty}, []string{name + "_FILE", "empty"}},
		}
		for _, tc := range cases {
			t.Run(name+"/"+tc.label, func(t *testing.T) {
				_, err := ConfigFromLookup(lookupFrom(tc.env))
				if err == nil {
					t.Fatal("ConfigFromLookup returned no error")
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "backend: ") {
					t.Errorf("error %q lacks the prefix \"backend: \"", msg)
				}
				for _, want := range tc.want {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not contain %q", msg, want)
					}
				}
				assertNoSecret(t, msg)
			})
		}
	}
}

func TestConfigStringRedacts(t *testing.T) {
	cfg := Config{Registry: Etcd, ConsulToken: testToken, EtcdUsername: testUsername, EtcdPassword: testPassword}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		text := fmt.Sprintf(verb, cfg)
		assertNoSecret(t, text)
		if !strings.Contains(text, "[redacted]") {
			t.Errorf("%s of Config = %s, want [redacted] in place of the secrets", verb, text)
		}
		if !strings.Contains(text, testUsername) {
			t.Errorf("%s of Config = %s, want the user name, which is not secret", verb, text)
		}
	}

	if text := fmt.Sprint(Config{Registry: Memory}); strings.Contains(text, "[redacted]") {
		t.Errorf("Config without secrets prints %s, want no [redacted]", text)
	}
}
