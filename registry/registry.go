package registry

import (
	"errors"
	"fmt"
	"time"

	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// ErrNoSigner reports a Register call on a wrapper that has no signing
// credentials.
var ErrNoSigner = errors.New("registry: no signing credentials; set MICRO_REGISTRY_SIGNING_KEY and MICRO_REGISTRY_IDENTITY_TOKEN (or their _FILE variants) to register services")

// Registry is a go-micro registry that signs what it registers and
// verifies what it returns. Create it with [New], [Wrap] or [FromEnv].
type Registry struct {
	inner registry.Registry
	opts  options
	err   error // a configuration error, returned from every call

	log    *rejectionLog
	stale  *staleView
	passed *passedNodes
}

var _ registry.Registry = (*Registry)(nil)

// New wraps inner. It fails when no verifier is given or an option is out
// of range, and logs a warning when inner is configured to skip TLS
// certificate verification.
func New(inner registry.Registry, opts ...Option) (*Registry, error) {
	r := Wrap(inner, opts...)
	if r.err != nil {
		return nil, r.err
	}
	return r, nil
}

// Wrap is [New] for use inside an expression such as
// micro.Registry(registry.Wrap(...)): a configuration error does not
// return here, but fails every later call with that error, so nothing
// is ever registered or discovered unverified.
func Wrap(inner registry.Registry, opts ...Option) *Registry {
	o := options{mode: Enforce, logEvery: time.Minute, sweepEvery: DefaultSweepInterval, now: time.Now, logger: logger.DefaultLogger}
	for _, opt := range opts {
		opt(&o)
	}

	r := &Registry{inner: inner, opts: o}
	r.err = r.check()
	r.log = newRejectionLog(o.logger, o.logEvery, o.now)
	r.stale = newStaleView(o.serveStale, o.now)
	r.passed = newPassedNodes()
	if r.err == nil {
		warnInsecure(inner, o.logger)
	}
	return r
}

func (r *Registry) check() error {
	o := r.opts
	switch {
	case r.inner == nil:
		return errors.New("registry: no inner registry to wrap")
	case o.verifier == nil:
		return fmt.Errorf("registry: %w; give a verifier with WithVerifier or set MICRO_REGISTRY_TRUST_BUNDLE", verify.ErrNoTrustBundle)
	case o.mode != Enforce && o.mode != Permissive:
		return fmt.Errorf("registry: verify mode %q is not %q or %q", o.mode, Enforce, Permissive)
	case o.serveStale < 0 || o.serveStale > MaxServeStale:
		return fmt.Errorf("registry: serve-stale window %v is outside 0 to %v", o.serveStale, MaxServeStale)
	case o.logEvery <= 0:
		return fmt.Errorf("registry: log interval %v is not positive", o.logEvery)
	case o.sweepEvery <= 0:
		return fmt.Errorf("registry: sweep interval %v is not positive", o.sweepEvery)
	case o.now == nil || o.logger == nil:
		return errors.New("registry: the clock or the logger is nil")
	}
	return nil
}

// Inner returns the wrapped registry.
func (r *Registry) Inner() registry.Registry { return r.inner }

// Verifier returns the verifier, for audits and metrics.
func (r *Registry) Verifier() *verify.Verifier { return r.opts.verifier }

// Signer returns the signer, or nil for a discovery-only wrapper.
func (r *Registry) Signer() *signing.Signer { return r.opts.signer }

// Mode returns the verify mode.
func (r *Registry) Mode() Mode { return r.opts.mode }

// Init passes options to the inner registry.
func (r *Registry) Init(opts ...registry.Option) error {
	if r.err != nil {
		return r.err
	}
	if err := r.inner.Init(opts...); err != nil {
		return err
	}
	warnInsecure(r.inner, r.opts.logger)
	return nil
}

// Options returns the inner registry's options.
func (r *Registry) Options() registry.Options { return r.inner.Options() }

// String returns "signet/" followed by the inner registry's name.
func (r *Registry) String() string {
	if r.inner == nil {
		return "signet"
	}
	return "signet/" + r.inner.String()
}

// Register signs a copy of svc and registers it with the inner registry.
// It fails without a signer, on invalid input, and when the identity may
// not register svc.
func (r *Registry) Register(svc *registry.Service, opts ...registry.RegisterOption) error {
	if r.err != nil {
		return r.err
	}
	if r.opts.signer == nil {
		return ErrNoSigner
	}

	signed, replaced, err := r.opts.signer.Sign(svc)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}

	// go-micro's memory registry keeps the first metadata it saw for a node
	// id and ignores later registrations of it, so a renewed record would
	// never replace the old one there.
	if len(replaced) > 0 && r.inner.String() == "memory" {
		old := &registry.Service{Name: svc.Name, Version: svc.Version}
		for _, id := range replaced {
			old.Nodes = append(old.Nodes, &registry.Node{Id: id})
		}
		if err := r.inner.Deregister(old); err != nil {
			return fmt.Errorf("registry: replacing renewed records of service %q: %w", svc.Name, err)
		}
	}
	return r.inner.Register(signed, opts...)
}

// Deregister passes the deregistration to the inner registry and drops the
// cached signed records of svc's nodes.
func (r *Registry) Deregister(svc *registry.Service, opts ...registry.DeregisterOption) error {
	if r.err != nil {
		return r.err
	}
	if svc != nil && r.opts.signer != nil {
		for _, n := range svc.Nodes {
			if n != nil {
				r.opts.signer.Forget(svc.Name, svc.Version, n.Id)
			}
		}
	}
	return r.inner.Deregister(svc, opts...)
}

// GetService returns the versions of service name with only their verified
// nodes. It returns registry.ErrNotFound when no node verifies, unless
// serve-stale returns the last verified nodes.
func (r *Registry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}

	services, err := r.inner.GetService(name, opts...)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return nil, err
	}

	// The caller uses these nodes for name, so they are verified for name,
	// whatever name the backend returns. The go-micro etcd plugin (v1.2.0)
	// takes it from the first record under the service's key prefix, which
	// anyone who can write there chooses.
	for i, svc := range services {
		if svc != nil && svc.Name != name {
			renamed := *svc
			renamed.Name = name
			services[i] = &renamed
		}
	}

	start := time.Now()
	verified := r.filter(services)
	r.observeDuration("lookup", time.Since(start))

	if len(verified) == 0 {
		// The stale nodes are verified again, so that none is served past
		// its record's expiry or after its identity was revoked.
		if stale := r.filter(r.stale.serve(name)); len(stale) > 0 {
			r.servedStale(name, "lookup")
			return stale, nil
		}
		return nil, registry.ErrNotFound
	}
	r.stale.replace(name, verified)
	if r.opts.mode == Enforce {
		// Nodes tracked earlier and missing from this result stay tracked,
		// because a caller's cache may still contain them and a watcher
		// must be able to withdraw them once they stop verifying.
		for _, svc := range verified {
			r.passed.add(svc)
		}
	}
	return verified, nil
}

// ListServices returns the inner registry's service list. The names are
// not verified: a name may exist only because of rogue records. The
// services carry no nodes; call GetService for verified nodes.
func (r *Registry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.inner.ListServices(opts...)
}

// Watch returns a watcher whose results carry only verified nodes.
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	if r.err != nil {
		return nil, r.err
	}
	w, err := r.inner.Watch(opts...)
	if err != nil {
		return nil, err
	}

	var wo registry.WatchOptions
	for _, o := range opts {
		o(&wo)
	}
	return newWatcher(r, w, wo.Service), nil
}

func (r *Registry) observeDuration(op string, d time.Duration) {
	if r.opts.observer != nil {
		r.opts.observer.Verified(op, d)
	}
}

func (r *Registry) servedStale(name, op string) {
	if r.opts.observer != nil {
		r.opts.observer.ServedStale(name)
	}
	r.opts.logger.Fields(map[string]any{"service": name, "operation": op}).
		Log(logger.WarnLevel, "signet: no verified node left; serving the last verified nodes (serve-stale)")
}
