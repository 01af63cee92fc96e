package testserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// EtcdUser is the etcd user that StartEtcd creates when auth is on.
	EtcdUser = "signet"

	// EtcdUserPrefix is the only key prefix EtcdUser may read and write.
	// It is the prefix under which the go-micro etcd registry stores nodes.
	EtcdUserPrefix = "/micro/"

	etcdRootUser = "root"
	etcdUserRole = "signet-registry"

	// startAttempts is how often a starter picks new ports after a bind
	// fails because another process took a port.
	startAttempts = 3
)

// EtcdOptions selects the security features of an embedded etcd server.
type EtcdOptions struct {
	// TLS serves the client URL over HTTPS with a certificate from a
	// generated CA and requires client certificates signed by that CA.
	TLS bool

	// Auth enables etcd authentication with a root user and the user
	// EtcdUser, whose role may read and write keys under EtcdUserPrefix only.
	Auth bool
}

// Etcd is an embedded etcd server on 127.0.0.1, with what a client needs to
// connect to it.
type Etcd struct {
	// Endpoints contains the client URL, http://127.0.0.1:PORT, or
	// https://127.0.0.1:PORT with TLS.
	Endpoints []string

	// With TLS: the CA certificate, the client certificate and its key as
	// PEM file paths, and a client configuration that verifies the server
	// against the CA and presents the client certificate. The client
	// certificate's CN (see clientCertCommonName) is not an etcd user, so
	// with Auth a client must still send Username and Password.
	CAFile    string
	CertFile  string
	KeyFile   string
	TLSConfig *tls.Config

	// With Auth: the credentials of EtcdUser and of the root user.
	Username     string
	Password     string
	RootUsername string
	RootPassword string

	t          testing.TB
	opts       EtcdOptions
	dataDir    string
	clientPort int
	peerPort   int
	certs      certFiles
	output     *outputTail // etcd's log at error level and above

	mu     sync.Mutex
	server *embed.Etcd // nil while stopped
}

// StartEtcd starts an embedded single-member etcd server with its data
// directory under t.TempDir() and registers t.Cleanup to stop it.
func StartEtcd(t testing.TB, opts EtcdOptions) *Etcd {
	t.Helper()

	dir := t.TempDir()
	e := &Etcd{
		t:       t,
		opts:    opts,
		dataDir: filepath.Join(dir, "data"),
		output:  newOutputTail(),
	}

	if opts.TLS {
		certs, err := writeTestPKI(dir)
		if err != nil {
			t.Fatalf("generate etcd TLS certificates: %v", err)
		}
		tlsConfig, err := clientTLSConfig(certs)
		if err != nil {
			t.Fatalf("build etcd client TLS configuration: %v", err)
		}
		e.certs = certs
		e.CAFile = certs.CAFile
		e.CertFile = certs.ClientCertFile
		e.KeyFile = certs.ClientKeyFile
		e.TLSConfig = tlsConfig
	}

	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var ports []int
		ports, err = freePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		e.clientPort, e.peerPort = ports[0], ports[1]

		err = e.start()
		if err == nil || !isAddrInUse(err, "") {
			break
		}
		t.Logf("etcd could not bind its ports (attempt %d of %d), retrying with new ports: %v", attempt, startAttempts, err)
	}
	if err != nil {
		t.Fatalf("start etcd: %v\netcd log tail:\n%s", err, e.output)
	}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("etcd log tail:\n%s", e.output)
		}
	})

	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	e.Endpoints = []string{scheme + "://127.0.0.1:" + strconv.Itoa(e.clientPort)}

	if opts.Auth {
		e.RootUsername = etcdRootUser
		e.RootPassword = randomHex(16)
		e.Username = EtcdUser
		e.Password = randomHex(16)
		if err := e.enableAuth(); err != nil {
			t.Fatalf("enable etcd auth: %v", err)
		}
	}

	return e
}

// ClientConfig returns a clientv3 configuration for EtcdUser (or no user
// without Auth), with TLS when the server uses it.
func (e *Etcd) ClientConfig() clientv3.Config {
	return clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         e.TLSConfig,
		Username:    e.Username,
		Password:    e.Password,
	}
}

// Stop stops the server and keeps its data directory for Restart. Stopping
// a stopped server does nothing.
func (e *Etcd) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.server != nil {
		e.server.Close()
		e.server = nil
	}
}

// Restart stops the server if it runs and starts it again on the same ports
// with the same data directory, so keys, users and roles survive. It fails
// the test when the server does not come back.
func (e *Etcd) Restart() {
	e.t.Helper()

	e.Stop()
	if err := e.start(); err != nil {
		e.t.Fatalf("restart etcd on ports %d and %d: %v\netcd log tail:\n%s", e.clientPort, e.peerPort, err, e.output)
	}
}

// start starts the server on e's ports and waits until it serves clients.
func (e *Etcd) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.server != nil {
		return errors.New("etcd is already running")
	}

	cfg := e.config()
	server, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}

	select {
	case <-server.Server.ReadyNotify():
	case err := <-server.Err():
		server.Close()
		return fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(startTimeout):
		server.Close()
		return fmt.Errorf("etcd not ready after %v", startTimeout)
	}

	e.server = server

	return nil
}

// config returns a fresh embed configuration, because embed.StartEtcd
// fills in fields of the configuration it gets.
func (e *Etcd) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = "signet-test"
	cfg.Dir = e.dataDir
	// Etcd logs into e.output, which StartEtcd prints only when the test
	// fails. Even a clean Close logs a few "server closed" errors.
	cfg.LogLevel = "error"
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(e.output), zapcore.ErrorLevel)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(core))

	clientScheme := "http"
	if e.opts.TLS {
		clientScheme = "https"
		cfg.ClientTLSInfo.CertFile = e.certs.ServerCertFile
		cfg.ClientTLSInfo.KeyFile = e.certs.ServerKeyFile
		cfg.ClientTLSInfo.TrustedCAFile = e.certs.CAFile
		cfg.ClientTLSInfo.ClientCertAuth = true
	}

	clientURL := url.URL{Scheme: clientScheme, Host: "127.0.0.1:" + strconv.Itoa(e.clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(e.peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	return cfg
}

// enableAuth creates the root user, enables auth, and creates EtcdUser with
// a role limited to EtcdUserPrefix. Etcd rejects AuthEnable until a root
// user with the root role exists. The other users and roles are created
// afterwards as root, which checks that root's credentials work.
func (e *Etcd) enableAuth() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := clientv3.New(clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         e.TLSConfig,
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close()

	if _, err := admin.UserAdd(ctx, etcdRootUser, e.RootPassword); err != nil {
		return fmt.Errorf("add user %s: %w", etcdRootUser, err)
	}
	if _, err := admin.UserGrantRole(ctx, etcdRootUser, "root"); err != nil {
		return fmt.Errorf("grant role root to user %s: %w", etcdRootUser, err)
	}
	if _, err := admin.AuthEnable(ctx); err != nil {
		return fmt.Errorf("auth enable: %w", err)
	}

	root, err := clientv3.New(clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         e.TLSConfig,
		Username:    e.RootUsername,
		Password:    e.RootPassword,
	})
	if err != nil {
		return fmt.Errorf("connect as %s: %w", etcdRootUser, err)
	}
	defer root.Close()

	rangeEnd := clientv3.GetPrefixRangeEnd(EtcdUserPrefix)
	if _, err := root.RoleAdd(ctx, etcdUserRole); err != nil {
		return fmt.Errorf("add role %s: %w", etcdUserRole, err)
	}
	if _, err := root.RoleGrantPermission(ctx, etcdUserRole, EtcdUserPrefix, rangeEnd, clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		return fmt.Errorf("grant readwrite on %s to role %s: %w", EtcdUserPrefix, etcdUserRole, err)
	}
	if _, err := root.UserAdd(ctx, e.Username, e.Password); err != nil {
		return fmt.Errorf("add user %s: %w", e.Username, err)
	}
	if _, err := root.UserGrantRole(ctx, e.Username, etcdUserRole); err != nil {
		return fmt.Errorf("grant role %s to user %s: %w", etcdUserRole, e.Username, err)
	}

	return nil
}

// randomHex returns 2n random hexadecimal characters.
func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b)

	return hex.EncodeToString(b)
}
