// Command poisoning demonstrates service registry poisoning against a
// go-micro service, and signet stopping it, in one process on loopback.
//
// It starts a registry backend (an embedded etcd by default), a genuine
// greeter service that registers through signet, and a rogue greeter server.
// An attacker with write access to the backend then advertises the rogue
// server in four records:
//
//   - an unsigned node;
//   - a copy of the genuine signed record with a new node id and address;
//   - a record signed with the stolen key of a workload allowed another
//     service only;
//   - an expired record, replayed for the rogue server's address.
//
// Two go-micro clients call the greeter, one through the plain registry and
// one through signet.
//
// Usage:
//
//	go run ./examples/poisoning                    # embedded etcd
//	go run ./examples/poisoning -registry memory   # go-micro memory registry
//	go run ./examples/poisoning -n 50              # 50 calls per client
//	go run ./examples/poisoning -registry consul -address 127.0.0.1:8500
//
// The last line of the output is the summary
//
//	plain registry: X/N calls reached the rogue server; signet: Y/N
//
// and the exit status is 0 only when Y is 0, signet dropped every rogue
// record, every signet call reached the genuine greeter, and X is above 0
// (otherwise the run showed no attack to stop).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Limits of the command line.
const (
	defaultCalls = 20
	maxCalls     = 1000

	// runTimeout bounds a whole run, shutdown included. Runs on embedded
	// etcd took 0.3 to 1.5 s on a 2-core machine, and up to 5 s built with
	// -race.
	runTimeout = 25 * time.Second

	// exitGrace is how long after runTimeout the process is ended even if
	// a shutdown step hangs.
	exitGrace = 4 * time.Second
)

// config is the parsed command line.
type config struct {
	registry    string // memory, etcd or consul
	address     string // host:port of the user's server; empty runs an embedded one
	allowRemote bool
	calls       int

	// tempDir is the directory of the embedded etcd's data. The caller
	// removes it.
	tempDir string
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "poisoning: %v\n", err)
		os.Exit(2)
	}

	tempDir, err := os.MkdirTemp("", "signet-poisoning-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "poisoning: creating a temporary directory: %v\n", err)
		os.Exit(1)
	}
	cfg.tempDir = tempDir

	// A shutdown step that hangs past the deadline must not keep the process
	// alive, so a watchdog removes the data and exits.
	watchdog := time.AfterFunc(runTimeout+exitGrace, func() {
		fmt.Fprintf(os.Stderr, "poisoning: shutdown did not finish within %v; exiting\n", runTimeout+exitGrace)
		os.RemoveAll(tempDir)
		os.Exit(1)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	code := run(ctx, cfg, os.Stdout, os.Stderr)
	cancel()
	stop()

	watchdog.Stop()
	if err := os.RemoveAll(tempDir); err != nil {
		fmt.Fprintf(os.Stderr, "poisoning: removing %s: %v\n", tempDir, err)
	}
	os.Exit(code)
}

// parseFlags parses the command line. Usage goes to usageOut.
func parseFlags(args []string, usageOut io.Writer) (config, error) {
	fs := flag.NewFlagSet("poisoning", flag.ContinueOnError)
	fs.SetOutput(usageOut)

	var cfg config
	fs.StringVar(&cfg.registry, "registry", "etcd", "registry backend: etcd (embedded unless -address is set), memory, or consul (needs -address)")
	fs.StringVar(&cfg.address, "address", "", "host:port of your own etcd or Consul server to use instead of an embedded one; the demo writes rogue records there and removes them at exit")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow an -address that is not a loopback address")
	fs.IntVar(&cfg.calls, "n", defaultCalls, fmt.Sprintf("calls per client, from 2 to %d", maxCalls))
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: go run ./examples/poisoning [flags]\n\n")
		fmt.Fprintf(usageOut, "Poisons a go-micro registry and shows which calls reach the rogue server,\n")
		fmt.Fprintf(usageOut, "through the plain registry and through signet.\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(usageOut, "\nExamples:\n")
		fmt.Fprintf(usageOut, "  go run ./examples/poisoning\n")
		fmt.Fprintf(usageOut, "  go run ./examples/poisoning -registry memory -n 50\n")
		fmt.Fprintf(usageOut, "  go run ./examples/poisoning -registry consul -address 127.0.0.1:8500\n")
	}

	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q; see -help", fs.Arg(0))
	}
	if cfg.calls < 2 || cfg.calls > maxCalls {
		return config{}, fmt.Errorf("-n %d is outside 2 to %d", cfg.calls, maxCalls)
	}
	if err := checkBackendFlags(cfg); err != nil {
		return config{}, err
	}
	return cfg, nil
}
