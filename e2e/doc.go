// Package e2e contains end-to-end tests of signet with real go-micro rpc
// servers, clients and http brokers over loopback, on the memory registry
// and on an embedded etcd. Each test also runs the same attack through the
// plain registry and checks that it succeeds there, so that a passing test
// shows signet stopped an attack that works.
//
// The package has no code outside its tests.
package e2e
