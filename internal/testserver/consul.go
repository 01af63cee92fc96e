package testserver

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ConsulBinaryEnv names the environment variable that overrides the path of
// the consul binary.
const ConsulBinaryEnv = "SIGNET_CONSUL_BIN"

// ConsulOptions selects the security features of a Consul agent.
type ConsulOptions struct {
	// ACL enables ACLs with default_policy "deny". ManagementToken is then
	// the agent's initial management token.
	ACL bool
}

// Consul is a Consul 1.14 agent in -dev mode (a single server that keeps
// its state in memory) on 127.0.0.1, with what a client needs to reach it.
type Consul struct {
	// Addr is the HTTP API address, "127.0.0.1:PORT", as the go-micro
	// consul registry takes it in registry.Addrs.
	Addr string

	// ManagementToken is the initial management token with ACL, else "".
	ManagementToken string

	t      testing.TB
	binary string
	opts   ConsulOptions
	ports  consulPorts
	output *outputTail
	client *http.Client
	mu     sync.Mutex
	proc   *process // nil while stopped
	tokens []consulServiceToken
}

type consulPorts struct {
	http, serfLAN, serfWAN, server int
}

// consulServiceToken records a token made by ServiceToken, so that Restart
// can create it again with the same secret.
type consulServiceToken struct {
	secretID string
	services []string
}

// StartConsul starts `consul agent -dev` on free loopback ports, waits until
// it has elected itself leader (and with ACL until the management token is
// accepted), and registers t.Cleanup to stop it. It fails the test when the
// consul binary is missing.
func StartConsul(t testing.TB, opts ConsulOptions) *Consul {
	t.Helper()

	c := &Consul{
		t:      t,
		binary: findBinary(t, ConsulBinaryEnv, "consul"),
		opts:   opts,
		output: newOutputTail(),
		client: &http.Client{Timeout: 10 * time.Second},
	}
	if opts.ACL {
		c.ManagementToken = randomUUID()
	}

	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var ports []int
		ports, err = freePorts(4)
		if err != nil {
			t.Fatal(err)
		}
		c.ports = consulPorts{http: ports[0], serfLAN: ports[1], serfWAN: ports[2], server: ports[3]}
		c.Addr = "127.0.0.1:" + strconv.Itoa(c.ports.http)

		mark := c.output.mark()
		err = c.start()
		if err == nil || !isAddrInUse(err, c.output.since(mark)) {
			break
		}
		t.Logf("consul could not bind its ports (attempt %d of %d), retrying with new ports: %v", attempt, startAttempts, err)
	}
	if err != nil {
		t.Fatalf("start consul: %v\nconsul output tail:\n%s", err, c.output)
	}

	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("consul output tail:\n%s", c.output)
		}
	})

	return c
}

// Stop stops the agent. Stopping a stopped agent does nothing.
func (c *Consul) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.proc != nil {
		c.proc.stop()
		c.proc = nil
	}
}

// Restart stops the agent and starts a new one on the same ports. Because
// -dev mode keeps state in memory only, the new agent starts with an empty
// catalog and KV store, so clients must register their services again.
// ManagementToken stays valid, and Restart creates every token from
// ServiceToken again with the same secret.
func (c *Consul) Restart() {
	c.t.Helper()

	c.Stop()
	fmt.Fprintf(c.output, "\n--- signet testserver: restarting consul ---\n")
	if err := c.start(); err != nil {
		c.t.Fatalf("restart consul on %s: %v\nconsul output tail:\n%s", c.Addr, err, c.output)
	}

	c.mu.Lock()
	tokens := append([]consulServiceToken(nil), c.tokens...)
	c.mu.Unlock()

	for _, token := range tokens {
		if err := c.createServiceToken(token); err != nil {
			c.t.Fatalf("create consul service token for %v again after restart: %v", token.services, err)
		}
	}
}

// ServiceToken creates an ACL policy and a token for it, and returns the
// token's secret. The policy grants write on each named service and read on
// every node and service, which is what the go-micro consul registry needs
// to register those services and to look services up. It fails the test
// when ACL is off.
func (c *Consul) ServiceToken(t testing.TB, serviceNames ...string) string {
	t.Helper()

	if !c.opts.ACL {
		t.Fatal("ServiceToken needs a Consul started with ConsulOptions{ACL: true}")
	}
	if len(serviceNames) == 0 {
		t.Fatal("ServiceToken needs at least one service name")
	}

	token := consulServiceToken{secretID: randomUUID(), services: serviceNames}
	if err := c.createServiceToken(token); err != nil {
		t.Fatalf("create consul service token for %v: %v", serviceNames, err)
	}

	c.mu.Lock()
	c.tokens = append(c.tokens, token)
	c.mu.Unlock()

	return token.secretID
}

// createServiceToken creates the policy and the token with the given secret
// through the HTTP API, authenticated with the management token.
func (c *Consul) createServiceToken(token consulServiceToken) error {
	var rules strings.Builder
	for _, name := range token.services {
		fmt.Fprintf(&rules, "service %q {\n  policy = \"write\"\n}\n", name)
	}
	rules.WriteString("node_prefix \"\" {\n  policy = \"read\"\n}\n")
	rules.WriteString("service_prefix \"\" {\n  policy = \"read\"\n}\n")

	// Policy names must be unique, so each gets a random suffix.
	policy := map[string]any{
		"Name":        "signet-test-" + randomHex(8),
		"Description": "services " + strings.Join(token.services, ", "),
		"Rules":       rules.String(),
	}
	var created struct{ ID string }
	if err := c.putJSON("/v1/acl/policy", policy, &created); err != nil {
		return fmt.Errorf("create policy: %w", err)
	}

	body := map[string]any{
		"SecretID":    token.secretID,
		"Description": "signet test token for " + strings.Join(token.services, ", "),
		"Policies":    []map[string]string{{"ID": created.ID}},
	}
	if err := c.putJSON("/v1/acl/token", body, nil); err != nil {
		return fmt.Errorf("create token: %w", err)
	}

	return nil
}

// putJSON sends a PUT with a JSON body and the management token, and decodes
// a JSON response into out unless out is nil.
func (c *Consul) putJSON(path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}

	req, err := http.NewRequest(http.MethodPut, "http://"+c.Addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Consul-Token", c.ManagementToken)

	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read response of PUT %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}

	return json.Unmarshal(data, out)
}

// start starts an agent on c's ports and waits until it is ready.
func (c *Consul) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.proc != nil {
		return errors.New("consul is already running")
	}

	// CHECKPOINT_DISABLE and disable_update_check both stop the agent from
	// contacting HashiCorp's update service. The -1 ports turn off the DNS,
	// gRPC and gRPC-TLS listeners, which -dev mode otherwise opens on their
	// fixed default ports.
	proc, err := startProcess("consul", c.binary, c.args(), []string{"CHECKPOINT_DISABLE=1"}, c.output)
	if err != nil {
		return err
	}

	if err := pollUntilReady(startTimeout, proc.done, proc.exitError, c.checkReady); err != nil {
		proc.stop()
		return err
	}
	c.proc = proc

	return nil
}

func (c *Consul) args() []string {
	args := []string{
		"agent", "-dev",
		"-bind", "127.0.0.1",
		"-client", "127.0.0.1",
		"-http-port", strconv.Itoa(c.ports.http),
		"-dns-port", "-1",
		"-grpc-port", "-1",
		"-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(c.ports.serfLAN),
		"-serf-wan-port", strconv.Itoa(c.ports.serfWAN),
		"-server-port", strconv.Itoa(c.ports.server),
		"-hcl", "disable_update_check = true",
	}
	if c.opts.ACL {
		// Consul 1.14 names the bootstrap token tokens.initial_management.
		// The agent token is set to the same token, so the agent can
		// register its own node, which anti-entropy needs before it syncs
		// services registered with narrower tokens.
		acl := fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  tokens {
    initial_management = %q
    agent = %q
  }
}`, c.ManagementToken, c.ManagementToken)
		args = append(args, "-hcl", acl)
	}

	return args
}

// checkReady returns nil once the agent has a raft leader and, with ACL,
// accepts the management token.
func (c *Consul) checkReady() error {
	var leader string
	if err := c.getJSON("/v1/status/leader", "", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("consul has no leader yet")
	}

	if c.opts.ACL {
		var self struct{ SecretID string }
		if err := c.getJSON("/v1/acl/token/self", c.ManagementToken, &self); err != nil {
			return fmt.Errorf("management token not accepted yet: %w", err)
		}
	}

	return nil
}

func (c *Consul) getJSON(path, token string, out any) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+c.Addr+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}

	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}

	return json.Unmarshal(data, out)
}

// randomUUID returns a random version 4 UUID, the form Consul expects for
// token secrets.
func randomUUID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80

	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
