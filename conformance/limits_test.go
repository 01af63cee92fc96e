package conformance

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/signing"
)

// testLimits checks that a record that would break Consul's Service.Meta
// limits, the default limits on every backend, is rejected at Register
// with an error that names the key and the limit, and that nothing reaches
// the backend. For Consul a counting proxy shows that no registration
// request reached the agent.
func testLimits(t *testing.T, f *fixture) {
	creds := f.identity(t, "limits", []string{"lim-*"}, nil)
	manyPairs := map[string]string{}
	for i := 0; i < signing.ConsulLimits.MaxPairs; i++ {
		manyPairs[fmt.Sprintf("pair%02d", i)] = "v"
	}
	longKey := strings.Repeat("k", signing.ConsulLimits.MaxKeyLen+1)

	cases := []struct {
		name     string
		metadata map[string]string
		want     []string
	}{
		{"value-too-long", map[string]string{"note": strings.Repeat("v", signing.ConsulLimits.MaxValueLen+1)}, []string{`"note"`, "513 characters", "limit of 512"}},
		{"key-with-dot", map[string]string{"user.id": "42"}, []string{`"user.id"`, "[A-Za-z0-9_-]"}},
		{"key-too-long", map[string]string{longKey: "v"}, []string{longKey[:32], "129 characters", "limit of 128"}},
		{"reserved-prefix", map[string]string{"consul-token": "v"}, []string{`"consul-token"`, `"consul-"`}},
		{"too-many-pairs", manyPairs, []string{"metadata pairs", "limit of 64"}},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "lim-" + c.name
			svc := service(name, "1.0.0", "127.0.0.1:9501")
			for k, v := range c.metadata {
				svc.Nodes[0].Metadata[k] = v
			}

			var proxy *countingProxy
			var inner registry.Registry
			if f.b.consulProxy != nil {
				inner, proxy = f.b.consulProxy(t, name)
			} else {
				inner = f.b.genuine(t, podName("g", name, svc.Nodes[0].Id), name)
			}
			w := f.wrap(t, inner, creds, f.clock.Now)

			err := w.Register(svc, registry.RegisterTTL(registerTTL))
			if !errors.Is(err, signing.ErrInvalidService) {
				t.Fatalf("Register(%s) with metadata over the limits: error %v, want ErrInvalidService", name, err)
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Register(%s) error %q does not contain %q", name, err, want)
				}
			}

			if proxy != nil {
				if n := proxy.registers.Load(); n != 0 {
					t.Errorf("%d registration requests of %s reached the Consul agent, want 0", n, name)
				}
			}
			raw, err := f.b.reader.GetService(name)
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("GetService(%s) on the plain %s registry: %v", name, f.b.name, err)
			}
			if _, n := findNode(raw, "", svc.Nodes[0].Id); n != nil {
				t.Errorf("the %s backend holds the rejected record of %s: %s", f.b.name, name, describe(raw))
			}
		})
	}
}
