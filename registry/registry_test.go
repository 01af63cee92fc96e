package registry_test

import (
	"errors"
	"testing"
	"time"

	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/verify"
)

func TestRegisterLookupMemory(t *testing.T) {
	clock := testid.NewClock(time.Unix(1_800_000_000, 0))
	issuer := testid.NewIssuer(t, clock.Now)
	creds := issuer.Node(t, "greeter", []string{"greeter"}, nil, time.Hour)

	inner := registry.NewMemoryRegistry()
	reg := issuer.Wrap(t, inner, creds, clock.Now)

	svc := testid.Service("greeter", "greeter-1", "127.0.0.1:9000")
	if err := reg.Register(svc); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if len(svc.Nodes[0].Metadata) != 5 {
		t.Fatalf("Register modified the caller's node metadata: %v", svc.Nodes[0].Metadata)
	}

	rogue := testid.Service("greeter", "rogue-1", "127.0.0.1:6666")
	if err := inner.Register(rogue); err != nil {
		t.Fatal(err)
	}

	got, err := reg.GetService("greeter")
	if err != nil {
		t.Fatalf("GetService: %v", err)
	}
	if len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].Id != "greeter-1" {
		t.Fatalf("GetService returned %+v, want only greeter-1", got)
	}

	clock.Advance(2 * time.Hour)
	if _, err := reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService after expiry: err = %v, want ErrNotFound", err)
	}
	_ = verify.ErrUnsigned
}
