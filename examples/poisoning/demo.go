package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

const (
	// registerWait bounds the wait for the genuine greeter's record to
	// show in the backend.
	registerWait = 5 * time.Second

	// watchWait bounds the wait for a rogue record written after the first
	// lookup to reach both clients in watch results.
	watchWait = 8 * time.Second

	// rewriteAfter is how long a rogue record may go unseen before the
	// attacker writes it again, in case a watcher was not yet listening.
	rewriteAfter = 2 * time.Second

	pollInterval = 20 * time.Millisecond
)

var quietLogs sync.Once

// run runs the demo and returns the exit status. The report goes to out,
// errors and go-micro's warnings to errOut.
func run(ctx context.Context, cfg config, out, errOut io.Writer) int {
	// go-micro logs every start, registration and connection at info level.
	// Its default logger's Init is not safe while other goroutines log, so
	// it is configured once per process, by the first run.
	quietLogs.Do(func() {
		if err := logger.DefaultLogger.Init(logger.WithLevel(logger.WarnLevel), logger.WithOutput(errOut)); err != nil {
			fmt.Fprintf(errOut, "poisoning: configuring the go-micro logger: %v\n", err)
		}
	})

	var cleanup cleanupStack
	defer cleanup.run(errOut)

	code, err := demo(ctx, cfg, out, errOut, &cleanup)
	if err != nil {
		fmt.Fprintf(errOut, "poisoning: %v\n", err)
		return 1
	}
	return code
}

func demo(ctx context.Context, cfg config, out, errOut io.Writer, cleanup *cleanupStack) (int, error) {
	be, err := openBackend(cfg, errOut)
	if err != nil {
		return 0, err
	}
	cleanup.push("stopping the registry backend", func() error { be.close(); return nil })
	fmt.Fprintf(out, "registry: %s\n", be.description)

	now := time.Now()
	ids, err := newIdentities(now)
	if err != nil {
		return 0, err
	}
	verifier, err := verify.New(verify.WithBundle(ids.bundle), verify.WithIssuer(issuerName))
	if err != nil {
		return 0, err
	}

	// The genuine greeter registers through signet with its own key.
	genuineInner, err := be.connect()
	if err != nil {
		return 0, err
	}
	signer, err := signing.NewSigner(ids.greeter)
	if err != nil {
		return 0, err
	}
	genuineReg, err := signet.New(genuineInner, signet.WithSigner(signer), signet.WithVerifier(verifier))
	if err != nil {
		return 0, err
	}
	genuine, err := startGreeter(genuineReg, "")
	if err != nil {
		return 0, err
	}
	cleanup.push("stopping the genuine greeter", genuine.stop)

	// The rogue server registers in a private memory registry that no
	// other participant reads, and the attacker advertises it.
	rogue, err := startGreeter(registry.NewMemoryRegistry(), rogueReply)
	if err != nil {
		return 0, err
	}
	cleanup.push("stopping the rogue server", rogue.stop)

	fmt.Fprintf(out, "genuine greeter: node %s at %s, registered through signet as %q (allowed: %s)\n",
		genuine.nodeID, genuine.address(), ids.greeter.Claims.Subject, serviceName)
	fmt.Fprintf(out, "rogue greeter: %s, advertised by an attacker who writes straight into the registry\n", rogue.address())

	attackerReg, err := be.connect()
	if err != nil {
		return 0, err
	}
	att := &attacker{reg: attackerReg}
	cleanup.push("removing the attacker's records", att.cleanup)

	genuineSvc, err := readGenuine(ctx, attackerReg, genuine.nodeID)
	if err != nil {
		return 0, err
	}
	attacks, err := buildAttacks(ids, genuineSvc, rogue.address(), now)
	if err != nil {
		return 0, err
	}

	cl, err := startClients(be, verifier, cleanup)
	if err != nil {
		return 0, err
	}
	plain, protected := cl.plain, cl.protected

	for _, a := range attacks {
		if !a.afterLookup {
			if err := att.inject(a.service); err != nil {
				return 0, err
			}
		}
	}

	// The first calls make each client's first lookup.
	var plainTally, signetTally tally
	firstCalls := cfg.calls / 2
	plain.call(ctx, firstCalls, genuine.nodeID, &plainTally)
	protected.call(ctx, firstCalls, genuine.nodeID, &signetTally)
	cl.rejections.markLookupDone()
	lookups := cl.counter.lookups.Load()

	if err := waitWatching(ctx, cl.plainWatch, cl.signetWatch); err != nil {
		return 0, err
	}
	for _, a := range attacks {
		if a.afterLookup {
			if err := injectUntilSeen(ctx, att, a, plain, cl.rejections); err != nil {
				return 0, err
			}
		}
	}

	plain.call(ctx, cfg.calls-firstCalls, genuine.nodeID, &plainTally)
	protected.call(ctx, cfg.calls-firstCalls, genuine.nodeID, &signetTally)
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("the demo did not finish in time: %w", err)
	}

	view, err := protected.nodeIDs()
	if err != nil {
		return 0, fmt.Errorf("reading the signet client's selector: %w", err)
	}
	stored, err := storedNodes(attackerReg)
	if err != nil {
		return 0, err
	}
	watchOnly := cl.counter.lookups.Load() == lookups

	allDropped := true
	for _, a := range attacks {
		o := judge(a, cl.rejections, view, stored, verifier, watchOnly)
		fmt.Fprintln(out, o.line)
		allDropped = allDropped && o.dropped
	}

	fmt.Fprintf(out, "plain client: %s\n", plainTally)
	fmt.Fprintf(out, "signet client: %s; signet checked %d lookup and %d watch results and rejected %d nodes\n",
		signetTally, cl.counter.lookups.Load(), cl.counter.watches.Load(), cl.counter.rejected.Load())
	return verdict(out, cfg.calls, plainTally, signetTally, allDropped), nil
}

// clients are the two greeter clients and what observes them.
type clients struct {
	plain     *greeterClient
	protected *greeterClient // discovers through signet

	// plainWatch and signetWatch report when each client's selector cache
	// starts watching.
	plainWatch, signetWatch *watchSignal

	rejections *rejectionStore
	counter    *resultCounter
}

// startClients returns a client over the plain registry and one over a
// discovery-only signet registry that verifies with verifier.
func startClients(be *registryBackend, verifier *verify.Verifier, cleanup *cleanupStack) (*clients, error) {
	plainInner, err := be.connect()
	if err != nil {
		return nil, err
	}
	cl := &clients{plainWatch: newWatchSignal(plainInner), rejections: newRejectionStore(), counter: &resultCounter{}}
	cl.plain = newGreeterClient(cl.plainWatch)
	cleanup.push("stopping the plain client", cl.plain.close)

	signetInner, err := be.connect()
	if err != nil {
		return nil, err
	}
	cl.signetWatch = newWatchSignal(signetInner)
	signetReg, err := signet.New(cl.signetWatch,
		signet.WithVerifier(verifier),
		signet.WithLogger(newRejectionRecorder(cl.rejections, logger.DefaultLogger)),
		signet.WithObserver(cl.counter))
	if err != nil {
		return nil, err
	}
	cl.protected = newGreeterClient(signetReg)
	cleanup.push("stopping the signet client", cl.protected.close)
	return cl, nil
}

// verdict writes a FAIL line for each way the run failed, then the summary
// line, and returns the exit status.
func verdict(out io.Writer, calls int, plain, protected tally, allDropped bool) int {
	code := 0
	if protected.rogue != 0 {
		fmt.Fprintf(out, "FAIL: %d calls through signet reached the rogue server\n", protected.rogue)
		code = 1
	}
	if !allDropped {
		fmt.Fprintln(out, "FAIL: signet passed on a rogue record (see above)")
		code = 1
	}
	if plain.rogue == 0 {
		fmt.Fprintln(out, "FAIL: no call through the plain registry reached the rogue server, so this run showed no attack to stop; run it again with a larger -n")
		code = 1
	}
	if protected.genuine != calls {
		fmt.Fprintf(out, "FAIL: only %d of %d calls through signet reached the genuine greeter\n", protected.genuine, calls)
		code = 1
	}
	fmt.Fprintf(out, "plain registry: %d/%d calls reached the rogue server; signet: %d/%d\n", plain.rogue, calls, protected.rogue, calls)
	return code
}

// readGenuine returns the greeter service as the backend stores it, with
// only the genuine node, once that node is there.
func readGenuine(ctx context.Context, reg registry.Registry, nodeID string) (*registry.Service, error) {
	deadline := time.Now().Add(registerWait)
	for {
		services, err := reg.GetService(serviceName)
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("reading the greeter service from the backend: %w", err)
		}
		for _, svc := range services {
			for _, n := range svc.Nodes {
				if n.Id == nodeID {
					return &registry.Service{Name: svc.Name, Version: svc.Version, Metadata: svc.Metadata, Endpoints: svc.Endpoints, Nodes: []*registry.Node{n}}, nil
				}
			}
		}

		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the genuine greeter's node %s is not in the backend after %v; see the registration error above", nodeID, registerWait)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return nil, err
		}
	}
}

// waitWatching waits until the selector caches of both clients have
// started their watchers, which they do in the background after the
// first lookup. A record written before that would reach no watcher.
func waitWatching(ctx context.Context, signals ...*watchSignal) error {
	timer := time.NewTimer(watchWait)
	defer timer.Stop()
	for _, s := range signals {
		select {
		case <-s.started:
		case <-timer.C:
			return fmt.Errorf("a client's selector did not start watching the registry within %v", watchWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// injectUntilSeen writes the record of a and waits until the plain
// client's selector contains its node and the signet client has rejected it.
// A watcher can still miss the first write, because etcd registers a watch
// shortly after the client requests it. Then the attacker writes it again.
func injectUntilSeen(ctx context.Context, att *attacker, a *attack, plain *greeterClient, rejections *rejectionStore) error {
	if err := att.inject(a.service); err != nil {
		return err
	}

	id := a.node().Id
	start := time.Now()
	lastWrite := start
	for {
		view, err := plain.nodeIDs()
		if err != nil {
			return fmt.Errorf("reading the plain client's selector: %w", err)
		}
		_, rejected := rejections.get(id)
		if view[id] && rejected {
			return nil
		}

		if time.Since(start) > watchWait {
			return fmt.Errorf("rogue node %s written after the first lookup did not reach both clients in a watch result within %v (in the plain client's selector: %t, rejected by the signet client: %t); the backend's watch may be slow, so run the demo again",
				id, watchWait, view[id], rejected)
		}
		if time.Since(lastWrite) > rewriteAfter {
			removed := func() bool {
				view, err := plain.nodeIDs()
				return err == nil && !view[id]
			}
			if err := att.rewrite(ctx, a.service, removed); err != nil {
				return err
			}
			lastWrite = time.Now()
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// storedNodes returns the greeter nodes in the backend by id.
func storedNodes(reg registry.Registry) (map[string]*registry.Node, error) {
	services, err := reg.GetService(serviceName)
	if err != nil {
		return nil, fmt.Errorf("reading the greeter service from the backend: %w", err)
	}
	nodes := map[string]*registry.Node{}
	for _, svc := range services {
		for _, n := range svc.Nodes {
			nodes[n.Id] = n
		}
	}
	return nodes, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the demo did not finish in time: %w", ctx.Err())
	}
}

// watchSignal passes every call to the registry it embeds, and closes
// started when Watch first succeeds.
type watchSignal struct {
	registry.Registry
	once    sync.Once
	started chan struct{}
}

func newWatchSignal(r registry.Registry) *watchSignal {
	return &watchSignal{Registry: r, started: make(chan struct{})}
}

func (w *watchSignal) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	wt, err := w.Registry.Watch(opts...)
	if err == nil {
		w.once.Do(func() { close(w.started) })
	}
	return wt, err
}

// cleanupStack is a list of shutdown steps, run last first.
type cleanupStack []cleanupStep

type cleanupStep struct {
	name string
	fn   func() error
}

func (s *cleanupStack) push(name string, fn func() error) {
	*s = append(*s, cleanupStep{name: name, fn: fn})
}

func (s *cleanupStack) run(errOut io.Writer) {
	steps := *s
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].fn(); err != nil {
			fmt.Fprintf(errOut, "poisoning: %s: %v\n", steps[i].name, err)
		}
	}
}
