package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// etcdStartTimeout bounds the wait for the embedded etcd to serve.
	etcdStartTimeout = 10 * time.Second

	// etcdStartAttempts is how often new ports are tried when another
	// process took a free port between the check and etcd's bind.
	etcdStartAttempts = 3
)

// embeddedEtcd is a single-member etcd server in this process, listening on
// 127.0.0.1 only.
type embeddedEtcd struct {
	server *embed.Etcd

	// address is the client address, 127.0.0.1:PORT.
	address string

	// log contains etcd's messages at error level and above. Even a clean
	// shutdown writes a few, so it is printed only when etcd fails.
	log *lockedBuffer
}

// startEtcd starts etcd with its data under dir and waits until it serves
// clients.
func startEtcd(dir string) (*embeddedEtcd, error) {
	log := &lockedBuffer{}

	var lastErr error
	for attempt := 0; attempt < etcdStartAttempts; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}

		e, err := startEtcdOn(dir, ports[0], ports[1], log)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("starting embedded etcd: %w\netcd log:\n%s", lastErr, log)
}

func startEtcdOn(dir string, clientPort, peerPort int, log *lockedBuffer) (*embeddedEtcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "signet-demo"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(log), zapcore.ErrorLevel)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(core))

	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}

	select {
	case <-server.Server.ReadyNotify():
	case err := <-server.Err():
		server.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(etcdStartTimeout):
		server.Close()
		return nil, fmt.Errorf("etcd not ready after %v", etcdStartTimeout)
	}
	return &embeddedEtcd{server: server, address: clientURL.Host, log: log}, nil
}

// stop stops the server. The caller removes the data directory.
func (e *embeddedEtcd) stop() error {
	e.server.Close()
	return nil
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		defer l.Close()
	}
	return ports, nil
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
