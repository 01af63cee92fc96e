package registry

import (
	"fmt"
	"time"

	"go-micro.dev/v4/logger"

	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// Mode selects what happens to nodes that fail verification.
type Mode string

const (
	// Enforce drops nodes that fail verification. It is the default.
	Enforce Mode = "enforce"

	// Permissive verifies, logs and counts every failure exactly as
	// Enforce does, but passes the failing nodes on, so a team can see what
	// Enforce would drop before turning it on.
	Permissive Mode = "permissive"
)

// ParseMode parses "enforce" or "permissive".
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case Enforce, Permissive:
		return Mode(s), nil
	}
	return "", fmt.Errorf("verify mode %q is not \"enforce\" or \"permissive\"", s)
}

// MaxServeStale bounds the serve-stale window.
const MaxServeStale = time.Hour

type options struct {
	signer     *signing.Signer
	verifier   *verify.Verifier
	logger     logger.Logger
	observer   Observer
	mode       Mode
	serveStale time.Duration
	logEvery   time.Duration
	sweepEvery time.Duration
	now        func() time.Time
}

// Option configures the wrapper.
type Option func(*options)

// WithSigner sets the signer used at Register. Without one, Register
// fails: a process that only discovers services needs no signing key.
func WithSigner(s *signing.Signer) Option {
	return func(o *options) { o.signer = s }
}

// WithVerifier sets the verifier used at GetService and Watch. It is
// required.
func WithVerifier(v *verify.Verifier) Option {
	return func(o *options) { o.verifier = v }
}

// WithLogger sets the logger; the default is go-micro's logger.DefaultLogger.
func WithLogger(l logger.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithObserver sets a receiver of verification events, for metrics.
func WithObserver(obs Observer) Option {
	return func(o *options) { o.observer = obs }
}

// WithMode sets [Enforce] (the default) or [Permissive].
func WithMode(m Mode) Option {
	return func(o *options) { o.mode = m }
}

// WithServeStale keeps serving a service's last verified nodes for at
// most d when a lookup or watch result would leave it with none, as DNS
// serve-stale (RFC 8767) does. This rides out a mass deletion or a
// registry that suddenly holds only poisoned records, at the cost of
// possibly sending traffic to nodes that really left. Each stale result is
// logged. 0 turns it off, which is the default; d is at most
// [MaxServeStale]. A lookup never serves a node past its record's expiry;
// a held-back watch deletion leaves the node in the caller's cache until
// its next lookup, which then applies the expiry.
func WithServeStale(d time.Duration) Option {
	return func(o *options) { o.serveStale = d }
}

// WithLogInterval sets how long repeats of one rejection (same service,
// node id and reason) are counted instead of logged; the default is one
// minute.
func WithLogInterval(d time.Duration) Option {
	return func(o *options) { o.logEvery = d }
}

// DefaultSweepInterval is how often each watcher checks the nodes handed out
// earlier, to withdraw those that stopped verifying.
const DefaultSweepInterval = time.Second

// WithSweepInterval sets how often each watcher checks the verified nodes
// it and GetService handed out and sends a delete result for each one that
// no longer verifies (expired record, revoked identity, issuer key removed
// from the trust bundle). The default is [DefaultSweepInterval].
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) { o.sweepEvery = d }
}

// WithClock sets the clock used for serve-stale windows and log rate
// limits; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Observer receives verification events. Calls come from lookup and watch
// goroutines, concurrently, and must not block.
type Observer interface {
	// NodeVerified is called for each node that passed verification.
	NodeVerified(service string)

	// NodeRejected is called for each node that failed, with the reason
	// code from [verify.Reason].
	NodeRejected(service, reason string)

	// Verified is called once per lookup or watch result with the time
	// spent verifying it.
	Verified(operation string, d time.Duration)

	// ServedStale is called when serve-stale returns the last verified
	// nodes of a service.
	ServedStale(service string)
}
