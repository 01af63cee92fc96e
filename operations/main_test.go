// Package operations tests the operator procedures of docs/operations.md
// against real etcd and Consul servers on loopback: issuer key rotation,
// node token renewal, revocation, the permissive rollout and serve-stale.
// Every case changes files the way a deployment does (a temporary file
// renamed over the old one) and checks what the next lookup and the next
// watch result return.
//
// The package has no code outside its tests.
package operations

import (
	"os"
	"testing"
	"time"

	"go-micro.dev/v4/logger"
)

func TestMain(m *testing.M) {
	// go-micro's servers and plugins log every registration at info level.
	logger.DefaultLogger = logger.NewLogger(logger.WithLevel(logger.ErrorLevel))
	os.Exit(m.Run())
}

// cases run in order against each backend, on one server per backend.
// Each case uses service names of its own.
var cases = []struct {
	name string
	run  func(t *testing.T, b *target)
}{
	{"key-rotation", testKeyRotation},
	{"token-renewal", testTokenRenewal},
	{"token-file-broken", testTokenFileBroken},
	{"revocation", testRevocation},
	{"permissive-rollout", testPermissiveRollout},
	{"serve-stale", testServeStale},
}

// backends lists the servers the cases run against.
var backends = []struct {
	name  string
	start func(t *testing.T) *target
}{
	{"etcd", startEtcd},
	{"consul", startConsul},
}

func TestOperations(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			began := time.Now()
			b := be.start(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
			t.Logf("%s: server start and all cases in %v", be.name, time.Since(began).Round(time.Millisecond))
		})
	}
}
