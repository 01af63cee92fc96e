package conformance

import (
	"errors"
	"strings"
	"testing"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/signing"
)

// testACL checks signet together with a least-privilege Consul token. A
// token that may write only greeter registers greeter through signet, and
// Consul rejects billing with that token. When the identity does not allow
// billing either, signet rejects it before any request reaches Consul.
func testACL(t *testing.T, f *fixture) {
	if !f.b.acl {
		t.Skip("only Consul with ACLs has per-service write permissions here: the etcd test user may write every key under /micro/, the kubernetes plugin sends no credentials, and memory and Consul without ACLs check none")
	}
	inner, proxy := f.b.consulProxy(t, "greeter")

	both := f.identity(t, "greeter", []string{"greeter", "billing"}, nil)
	w := f.wrap(t, inner, both, f.clock.Now)
	greeter := service("greeter", "1.0.0", "127.0.0.1:9401")
	if err := w.Register(greeter, registry.RegisterTTL(registerTTL)); err != nil {
		t.Fatalf("register greeter with a token that may write greeter: %v", err)
	}
	t.Cleanup(func() { _ = w.Deregister(greeter) })
	f.waitVerified(t, f.reader, "greeter", greeter.Nodes[0].Id)

	billing := service("billing", "1.0.0", "127.0.0.1:9402")
	before := proxy.registers.Load()
	err := w.Register(billing, registry.RegisterTTL(registerTTL))
	if err == nil {
		t.Fatal("Consul accepted billing with a token that may write only greeter")
	}
	if !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("Register(billing) error %q, want Consul's 403 Permission denied", err)
	}
	if n := proxy.registers.Load() - before; n != 1 {
		t.Errorf("%d registration requests of billing reached Consul, want 1 (the one Consul rejected)", n)
	}
	if raw, _ := f.b.reader.GetService("billing"); len(raw) > 0 {
		t.Errorf("the Consul catalog holds billing: %s", describe(raw))
	}

	only := f.identity(t, "greeter", []string{"greeter"}, nil)
	before = proxy.registers.Load()
	err = f.wrap(t, inner, only, f.clock.Now).Register(billing, registry.RegisterTTL(registerTTL))
	if !errors.Is(err, signing.ErrNotAllowed) {
		t.Errorf("Register(billing) with an identity that allows only greeter: error %v, want signing.ErrNotAllowed", err)
	}
	if n := proxy.registers.Load() - before; n != 0 {
		t.Errorf("%d registration requests reached Consul after signet's rejection, want 0", n)
	}
}
