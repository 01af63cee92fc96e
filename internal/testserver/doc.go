// Package testserver starts real registry servers (etcd, Consul and
// kube-apiserver) on loopback addresses for tests.
//
// Every starter takes a testing.TB, listens only on 127.0.0.1, and registers
// t.Cleanup to stop the server and remove its files. Etcd runs embedded in
// the test process. Consul and kube-apiserver run as child processes built
// by `bash .ci/build-tools.sh` into $SIGNET_TOOLS_DIR (default
// <repo>/.tools/bin), or taken from $SIGNET_CONSUL_BIN and
// $SIGNET_KUBE_APISERVER_BIN. A starter whose binary
// is missing fails the test instead of skipping it, so a missing build step
// shows up in CI.
package testserver
