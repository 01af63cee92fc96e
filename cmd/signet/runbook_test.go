package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"go-micro.dev/v4/logger"
	"go-micro.dev/v4/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/signet-micro/signet/internal/record"
	"github.com/signet-micro/signet/internal/testid"
	"github.com/signet-micro/signet/internal/testserver"
	"github.com/signet-micro/signet/metrics"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/registry/backend"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

// runbookPath is the operations guide whose commands TestRunbook runs,
// relative to this package's directory.
const runbookPath = "../../docs/operations.md"

// runbookService is the service that the guide's examples name.
const runbookService = "greeter"

// Timeouts of the runbook's waits. Files are reloaded at most once a
// second, and Consul shows a registration in its health endpoint shortly
// after the agent accepts it.
const (
	runbookTimeout = 20 * time.Second
	runbookPoll    = 50 * time.Millisecond
)

// runbookItem is a shell block of the guide, or a step that the test runs
// at that place.
type runbookItem struct {
	line  int      // line of the block's first command, or of the marker
	step  string   // the step of a <!-- runbook: NAME --> marker, or ""
	only  string   // for a block marked etcd or consul, that backend
	lines []string // the block's lines
}

// runbookDoc is the parsed guide.
type runbookDoc struct {
	text     string
	items    []runbookItem
	policies map[string]string // Consul ACL rules by policy name
	etcdACL  map[string][]etcdPermission
}

// etcdPermission is one key prefix an etcd user may read or read and
// write.
type etcdPermission struct {
	prefix string
	write  bool
}

var (
	markerPattern   = regexp.MustCompile(`^<!-- runbook: ([a-z0-9-]+) -->$`)
	policyPattern   = regexp.MustCompile(`^# policy ([a-z0-9-]+):`)
	etcdRowPattern  = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\| ((?:read|readwrite) `[^|]+) \\|")
	etcdPermPattern = regexp.MustCompile("(readwrite|read) `([^`]+)`")
	statusPattern   = regexp.MustCompile(`^#\s*exit status (\d+)`)
	metricPattern   = regexp.MustCompile(`\bsignet_[a-z_]+\b`)
)

// parseRunbook reads the guide: its sh blocks and markers in order, the
// Consul policies of its hcl blocks, and the rows of its etcd user table.
func parseRunbook(t *testing.T) *runbookDoc {
	t.Helper()
	data, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatalf("reading the operations guide: %v", err)
	}
	doc := &runbookDoc{text: string(data), policies: map[string]string{}, etcdACL: map[string][]etcdPermission{}}

	lines := strings.Split(string(data), "\n")
	only := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := markerPattern.FindStringSubmatch(line); m != nil {
			if m[1] == backend.Etcd || m[1] == backend.Consul {
				only = m[1]
			} else {
				doc.items = append(doc.items, runbookItem{line: i + 1, step: m[1]})
			}
			continue
		}
		if m := etcdRowPattern.FindStringSubmatch(line); m != nil {
			for _, p := range etcdPermPattern.FindAllStringSubmatch(m[2], -1) {
				doc.etcdACL[m[1]] = append(doc.etcdACL[m[1]], etcdPermission{prefix: p[2], write: p[1] == "readwrite"})
			}
			continue
		}
		if !strings.HasPrefix(line, "```") || line == "```" {
			continue
		}

		lang, start := strings.TrimPrefix(line, "```"), i+1
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		switch lang {
		case "sh":
			doc.items = append(doc.items, runbookItem{line: start + 1, only: only, lines: body})
			only = ""
		case "hcl":
			var m []string
			if len(body) > 0 {
				m = policyPattern.FindStringSubmatch(body[0])
			}
			if m == nil {
				t.Fatalf("%s:%d: an hcl block does not start with \"# policy NAME: ...\"", runbookPath, start+1)
			}
			doc.policies[m[1]] = strings.Join(body[1:], "\n")
		}
	}
	if only != "" {
		t.Fatalf("%s: a %s marker is not followed by an sh block", runbookPath, only)
	}
	return doc
}

// shellCommand is one command of an sh block.
type shellCommand struct {
	line   int
	text   string
	words  []string
	status int // the exit status a "# exit status N" comment expects
}

// commands returns the commands of an sh block, with continuation lines
// joined and variables expanded through lookup.
func (item runbookItem) commands(t *testing.T, lookup func(string) (string, bool)) []shellCommand {
	t.Helper()
	var out []shellCommand
	for i := 0; i < len(item.lines); i++ {
		line, first := item.lines[i], item.line+i
		for strings.HasSuffix(line, `\`) && i+1 < len(item.lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(item.lines[i])
		}
		words, comment, err := shellWords(line, lookup)
		if err != nil {
			t.Fatalf("%s:%d: %v", runbookPath, first, err)
		}
		if len(words) == 0 {
			continue
		}
		cmd := shellCommand{line: first, text: strings.TrimSpace(line), words: words}
		if m := statusPattern.FindStringSubmatch(comment); m != nil {
			cmd.status, _ = strconv.Atoi(m[1])
		}
		out = append(out, cmd)
	}
	return out
}

// shellWords splits a command line into words as a POSIX shell does for
// the subset the guide uses: blanks separate words, single quotes keep
// their content, double quotes keep their content with $NAME and ${NAME}
// expanded, and an unquoted '#' at the start of a word begins a comment,
// which is returned apart. A variable that lookup does not know is an
// error, so a guide that uses an unset variable fails the test.
func shellWords(line string, lookup func(string) (string, bool)) (words []string, comment string, err error) {
	var word strings.Builder
	inWord := false
	quote := rune(0)
	runes := []rune(line)

	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '$' && quote != '\'':
			name, next := variableName(runes, i+1)
			if name == "" {
				word.WriteRune(r)
				break
			}
			value, ok := lookup(name)
			if !ok {
				return nil, "", fmt.Errorf("variable $%s is not set", name)
			}
			word.WriteString(value)
			inWord = true
			i = next - 1
		case quote == '"':
			if r == '"' {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			return words, string(runes[i:]), nil
		case strings.ContainsRune("|&;<>()`\\*?", r):
			return nil, "", fmt.Errorf("%q uses the shell syntax %q, which the runbook test does not run; write it as prose", line, r)
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, "", fmt.Errorf("%q has an unterminated %c quote", line, quote)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, "", nil
}

// variableName returns the variable name at runes[i:], written NAME or
// {NAME}, and the index after it, or "" when none starts there.
func variableName(runes []rune, i int) (string, int) {
	braced := i < len(runes) && runes[i] == '{'
	if braced {
		i++
	}
	start := i
	for i < len(runes) && (runes[i] == '_' || runes[i] >= 'A' && runes[i] <= 'Z' || runes[i] >= 'a' && runes[i] <= 'z' || i > start && runes[i] >= '0' && runes[i] <= '9') {
		i++
	}
	name := string(runes[start:i])
	if braced {
		if i >= len(runes) || runes[i] != '}' || name == "" {
			return "", start
		}
		i++
	}
	return name, i
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runbookBackend is a registry server set up as the guide's section on
// registry access describes it.
type runbookBackend struct {
	kind string
	vars map[string]string // the guide's site variables

	// service, reader and attacker return plain registries with the
	// greeter service's credential, the read-only one, and one that may
	// write everything.
	service  func(t *testing.T) registry.Registry
	reader   func(t *testing.T) registry.Registry
	attacker registry.Registry

	// stored returns the metadata of every node of service as the server
	// stores it, by node id.
	stored func(t *testing.T, service string) map[string]map[string]string
}

// runbookNode is a node of the greeter service, configured by the
// process environment as the guide's exports leave it.
type runbookNode struct {
	id      string
	address string
	reg     *signet.Registry
}

func (n *runbookNode) registration() *registry.Service {
	return &registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{
		Id: n.id, Address: n.address, Metadata: map[string]string{"server": "mucp", "transport": "http"},
	}}}
}

// runbook runs the guide against one backend.
type runbook struct {
	t   *testing.T
	doc *runbookDoc
	b   *runbookBackend

	last    result // of the last signet command
	lastJTI string // printed by the last signet issue

	greeter   *runbookNode
	client    *signet.Registry
	clientLog *syncBuffer
	metrics   *metrics.Metrics
	gathered  *prometheus.Registry

	done map[string]bool // steps that ran
}

func TestRunbook(t *testing.T) {
	doc := parseRunbook(t)
	checkRunbookText(t, doc)

	for _, kind := range []string{backend.Etcd, backend.Consul} {
		t.Run(kind, func(t *testing.T) {
			began := time.Now()
			clearRegistryEnv(t)
			// The servers start before the change of directory, because the
			// Consul starter finds its binary from the working directory.
			dir := t.TempDir()
			var b *runbookBackend
			if kind == backend.Etcd {
				b = startRunbookEtcd(t, doc, dir)
			} else {
				b = startRunbookConsul(t, doc, dir)
			}
			t.Chdir(dir)
			rb := &runbook{t: t, doc: doc, b: b, metrics: metrics.New(), gathered: prometheus.NewRegistry(), clientLog: &syncBuffer{}, done: map[string]bool{}}
			rb.gathered.MustRegister(rb.metrics)
			rb.run()
			t.Logf("runbook against %s: %v", kind, time.Since(began).Round(time.Millisecond))
		})
	}
}

// checkRunbookText checks the guide's names against the code: every
// signet_* metric it mentions exists, and its table lists every reason
// code.
func checkRunbookText(t *testing.T, doc *runbookDoc) {
	t.Helper()
	names := map[string]bool{}
	descs := make(chan *prometheus.Desc, 100)
	metrics.New().Describe(descs)
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	for _, name := range metricPattern.FindAllString(doc.text, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !names[base] {
			t.Errorf("the guide names the metric %s, which package metrics does not export", name)
		}
	}
	for _, reason := range verify.Reasons() {
		if !strings.Contains(doc.text, "| `"+reason+"` |") {
			t.Errorf("the guide's table of reasons lacks %s", reason)
		}
	}
}

// clearRegistryEnv empties every MICRO_*, CONSUL_* and ETCD_* variable of
// the process for the duration of the test. signet, its backends and the
// Consul API client treat an empty variable as unset.
func clearRegistryEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "MICRO_") || strings.HasPrefix(name, "CONSUL_") || strings.HasPrefix(name, "ETCD_") {
			t.Setenv(name, "")
		}
	}
}

// run runs the guide's items in order.
func (rb *runbook) run() {
	t := rb.t
	steps := rb.steps()
	for _, item := range rb.doc.items {
		if item.step != "" {
			step, ok := steps[item.step]
			if !ok {
				t.Fatalf("%s:%d: the guide names step %q, which the runbook test does not define", runbookPath, item.line, item.step)
			}
			step()
			rb.done[item.step] = true
			continue
		}
		if item.only != "" && item.only != rb.b.kind {
			continue
		}
		rb.runBlock(item)
	}
	for name := range steps {
		if !rb.done[name] {
			t.Errorf("step %q never ran: the guide has no marker for it", name)
		}
	}
}

// lookupVariable returns a site variable of the backend, or a variable of
// the process environment.
func (rb *runbook) lookupVariable(name string) (string, bool) {
	if v, ok := rb.b.vars[name]; ok {
		return v, true
	}
	return os.LookupEnv(name)
}

var issuedJTI = regexp.MustCompile(`(?m)^Token ID \(jti\): (\S+)$`)

// runBlock runs the export and signet commands of one sh block.
func (rb *runbook) runBlock(item runbookItem) {
	t := rb.t
	for _, cmd := range item.commands(t, rb.lookupVariable) {
		switch cmd.words[0] {
		case "export":
			for _, assignment := range cmd.words[1:] {
				name, value, ok := strings.Cut(assignment, "=")
				if !ok || name == "" {
					t.Fatalf("%s:%d: %q is not NAME=VALUE", runbookPath, cmd.line, assignment)
				}
				t.Setenv(name, value)
			}
		case "signet":
			var stdout, stderr bytes.Buffer
			code := run(cmd.words[1:], &stdout, &stderr)
			rb.last = result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			if code != cmd.status {
				t.Fatalf("%s:%d: %s\nexit status %d, want %d\nstdout:\n%s\nstderr:\n%s", runbookPath, cmd.line, cmd.text, code, cmd.status, rb.last.stdout, rb.last.stderr)
			}
			if cmd.words[1] == "issue" {
				m := issuedJTI.FindStringSubmatch(rb.last.stderr)
				if m == nil {
					t.Fatalf("%s:%d: signet issue printed no token id:\n%s", runbookPath, cmd.line, rb.last.stderr)
				}
				rb.lastJTI = m[1]
			}
		default:
			t.Fatalf("%s:%d: %q is neither a signet command nor an export; the runbook test cannot run it, so write it as prose", runbookPath, cmd.line, cmd.text)
		}
	}
}

// steps returns the steps that the guide's markers name. Each one does
// what the guide's text leaves to the operator or the services, and checks
// that the commands before it had the effect that the text describes.
func (rb *runbook) steps() map[string]func() {
	t := rb.t
	return map[string]func(){
		"start-services": func() {
			if err := os.WriteFile(os.Getenv(signet.EnvRevocations+"_FILE"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			rb.greeter = rb.startNode("greeter-1", "127.0.0.1:19501")
			legacy := &registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{Id: "greeter-legacy", Address: "127.0.0.1:19502"}}}
			if err := rb.b.service(t).Register(legacy, runbookTTL); err != nil {
				t.Fatalf("registering the unsigned greeter-legacy: %v", err)
			}
			rb.startClient()
			rb.waitLookup("the permissive client", "greeter-1", "greeter-legacy")

			// The service's credential may write only its own service.
			other := &registry.Service{Name: "billing", Version: "latest", Nodes: []*registry.Node{{Id: "billing-1", Address: "127.0.0.1:19601"}}}
			err := rb.b.service(t).Register(other, runbookTTL)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permission denied") {
				t.Errorf("registering billing with greeter's credential: %v, want permission denied", err)
			}
		},
		"check-permissive": func() {
			rb.expectAuditRow("greeter-legacy", "unsigned")
			rb.expectAuditRow("greeter-1", "ok")
			if got := rb.rejected("unsigned"); got < 1 {
				t.Errorf("signet_nodes_rejected_total{reason=\"unsigned\"} = %v in permissive mode, want at least 1", got)
			}
			rb.expectLog("passed on in permissive mode", "node=greeter-legacy", "reason=unsigned")

			// The guide says that audits on Consul skip Consul's own service.
			if rb.b.kind == backend.Consul {
				var stdout, stderr bytes.Buffer
				run([]string{"audit"}, &stdout, &stderr)
				if strings.Contains(stdout.String(), "\nconsul ") {
					t.Errorf("signet audit without -service on Consul lists Consul's own service:\n%s%s", stdout.String(), stderr.String())
				}
				if !strings.Contains(stdout.String(), "greeter-legacy") {
					t.Errorf("signet audit without -service on Consul misses greeter-legacy:\n%s%s", stdout.String(), stderr.String())
				}
			}
		},
		"migrate-legacy": func() {
			legacy := &registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{Id: "greeter-legacy"}}}
			if err := rb.b.service(t).Deregister(legacy); err != nil {
				t.Fatalf("deregistering greeter-legacy: %v", err)
			}
			rb.waitStored("greeter-1")
		},
		"restart-enforce": func() {
			rb.greeter = rb.restartNode(rb.greeter, rb.greeter.id, rb.greeter.address)
			rb.startClient()
			if rb.client.Mode() != signet.Enforce {
				t.Fatalf("the client runs in %s mode after the restart, want enforce", rb.client.Mode())
			}
			stray := &registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{Id: "greeter-stray", Address: "127.0.0.1:6660"}}}
			rb.attack(stray)
			rb.expectLookup("greeter-1")
			rb.removeAttack(stray)
		},
		"wait-reissued": func() {
			token := rb.readToken()
			if id := tokenIDOf(t, token); id != rb.lastJTI {
				t.Fatalf("the token file holds jti %s, but signet issue printed %s", id, rb.lastJTI)
			}
			rb.heartbeatUntil("greeter's record with the token that signet issue wrote", func() bool {
				return storedToken(rb.b.stored(t, runbookService)[rb.greeter.id]) == token
			})
			rb.expectLookup(rb.greeter.id)
		},
		"check-audit-issuer-2": func() {
			lines := strings.Split(strings.TrimSpace(rb.last.stdout), "\n")
			for _, line := range lines {
				var n nodeJSON
				if err := json.Unmarshal([]byte(line), &n); err != nil {
					t.Fatalf("audit -json line %q: %v", line, err)
				}
				if n.Status != "ok" || n.KeyID != "issuer-2" {
					t.Errorf("audit -json line %q, want status ok and kid issuer-2", line)
				}
			}
		},
		"check-old-key-dropped": func() {
			old := rb.signedBy("issuer-1.key", "issuer-1", "greeter-old", "127.0.0.1:6661")
			rb.attack(old)
			// The client reloads the bundle within a second of its next lookup.
			rb.waitLookup("the client with the new bundle", rb.greeter.id)
			rb.expectLog("node rejected", "node=greeter-old", "reason=unknown-issuer-key", "kid=issuer-1")
			rb.removeAttack(old)
		},
		"leak": func() {
			// The attacker holds greeter's key and token, and signs a
			// record for an address of its own.
			key, err := signing.ParsePrivateKeyPEM([]byte(readFile(t, os.Getenv(signet.EnvSigningKey+"_FILE"))))
			if err != nil {
				t.Fatal(err)
			}
			creds, err := signing.NewCredentials(key, rb.readToken())
			if err != nil {
				t.Fatal(err)
			}
			rb.attack(signedService(t, creds, "greeter-rogue", "127.0.0.1:6666"))
			rb.expectLookup(rb.greeter.id, "greeter-rogue")
		},
		"restart-greeter": func() {
			rb.greeter = rb.restartNode(rb.greeter, "greeter-2", "127.0.0.1:19503")
			rb.waitLookup("the client", "greeter-2", "greeter-rogue")
		},
		"revoke-greeter-jti": func() {
			jti := tokenIDOf(t, strings.TrimSpace(readFile(t, "greeter.jwt")))
			if !strings.Contains(rb.last.stdout, jti) {
				t.Fatalf("signet inspect did not print the token id %s:\n%s", jti, rb.last.stdout)
			}
			path := os.Getenv(signet.EnvRevocations + "_FILE")
			// The CLI's own atomic replacement: a temporary file renamed
			// over the list.
			if err := replaceFile(path, []byte(readFile(t, path)+"jti "+jti+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"check-revoked": func() {
			rb.waitLookup("the client after the revocation", "greeter-2")
			if _, ok := rb.b.stored(t, runbookService)["greeter-rogue"]; !ok {
				t.Error("the server no longer stores greeter-rogue; the client did not have to drop it")
			}
			rb.expectLog("node rejected", "node=greeter-rogue", "reason=revoked")
		},
		"incident": func() {
			rb.attack(&registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{Id: "greeter-evil", Address: "127.0.0.1:6667"}}})
			genuine := rb.b.stored(t, runbookService)[rb.greeter.id]
			copied := &registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{Id: "greeter-copy", Address: "127.0.0.1:6668", Metadata: genuine}}}
			rb.attack(copied)
			rb.waitStored("greeter-2", "greeter-rogue", "greeter-evil", "greeter-copy")
		},
		"check-incident-audit": func() {
			rb.expectAuditRow("greeter-2", "ok")
			rb.expectAuditRow("greeter-rogue", "revoked")
			rb.expectAuditRow("greeter-evil", "unsigned")
			rb.expectAuditRow("greeter-copy", "bad-signature")
			rb.expectLookup("greeter-2")
			for _, reason := range []string{"revoked", "unsigned", "bad-signature"} {
				if rb.rejected(reason) < 1 {
					t.Errorf("signet_nodes_rejected_total{reason=%q} is 0 after the incident's lookup", reason)
				}
			}
		},
		"check-purge-needs-write": func() {
			for _, id := range []string{"greeter-rogue", "greeter-evil", "greeter-copy"} {
				if !strings.Contains(rb.last.stdout, "would remove service greeter version latest node "+id+" ") {
					t.Errorf("the dry run does not list %s:\n%s", id, rb.last.stdout)
				}
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"purge", "-yes", "-service", runbookService}, &stdout, &stderr)
			if code != exitError || !strings.Contains(strings.ToLower(stderr.String()), "permission denied") {
				t.Errorf("purge -yes with the read-only credential: exit status %d, want 2 and permission denied\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			rb.waitStored("greeter-2", "greeter-rogue", "greeter-evil", "greeter-copy")
		},
		"check-purged": func() {
			for _, id := range []string{"greeter-rogue", "greeter-evil", "greeter-copy"} {
				if !strings.Contains(rb.last.stdout, "removed service greeter version latest node "+id+" ") {
					t.Errorf("purge -yes does not report the removal of %s:\n%s", id, rb.last.stdout)
				}
			}
			rb.waitStored("greeter-2")
			rb.expectLookup("greeter-2")
		},
	}
}

// runbookTTL is the TTL of the runbook's registrations, long enough that
// none expires during a run; the go-micro etcd plugin (v1.2.0) needs one.
var runbookTTL = registry.RegisterTTL(10 * time.Minute)

// startNode starts a greeter node whose signet settings come from the
// process environment, as the guide's exports set them, and registers it.
func (rb *runbook) startNode(id, address string) *runbookNode {
	t := rb.t
	reg, err := signet.FromEnv(rb.b.service(t), signet.WithLogger(discardLog))
	if err != nil {
		t.Fatalf("starting greeter node %s from the environment: %v", id, err)
	}
	n := &runbookNode{id: id, address: address, reg: reg}
	want := append(slicesWithout(rb.storedIDs(), id), id)
	if err := reg.Register(n.registration(), runbookTTL); err != nil {
		t.Fatalf("registering greeter node %s: %v", id, err)
	}
	rb.waitStored(want...)
	return n
}

// restartNode deregisters old and starts a node with the environment's
// current settings.
func (rb *runbook) restartNode(old *runbookNode, id, address string) *runbookNode {
	t := rb.t
	if err := old.reg.Deregister(old.registration()); err != nil {
		t.Fatalf("stopping greeter node %s: %v", old.id, err)
	}
	if old.id != id {
		ids := rb.storedIDs()
		rb.waitStored(slicesWithout(ids, old.id)...)
	}
	return rb.startNode(id, address)
}

func slicesWithout(items []string, drop string) []string {
	var out []string
	for _, item := range items {
		if item != drop {
			out = append(out, item)
		}
	}
	return out
}

// startClient starts a client of greeter whose settings come from the
// process environment, with metrics, reading through the read-only
// credential.
func (rb *runbook) startClient() {
	t := rb.t
	log := newWriterLogger(rb.clientLog, logger.InfoLevel)
	reg, err := signet.FromEnv(rb.b.reader(t), signet.WithLogger(log), signet.WithObserver(rb.metrics))
	if err != nil {
		t.Fatalf("starting a client from the environment: %v", err)
	}
	rb.client = reg
}

// heartbeatUntil registers the greeter node until cond returns true.
func (rb *runbook) heartbeatUntil(what string, cond func() bool) {
	t := rb.t
	deadline := time.Now().Add(runbookTimeout)
	for {
		if err := rb.greeter.reg.Register(rb.greeter.registration(), runbookTTL); err != nil {
			t.Fatalf("registering greeter node %s: %v", rb.greeter.id, err)
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v of heartbeats waiting for %s", runbookTimeout, what)
		}
		time.Sleep(runbookPoll)
	}
}

// readToken returns the token in the file that
// MICRO_REGISTRY_IDENTITY_TOKEN_FILE names.
func (rb *runbook) readToken() string {
	return strings.TrimSpace(readFile(rb.t, os.Getenv(signet.EnvIdentityToken+"_FILE")))
}

// signedBy returns a greeter service with node id at address, signed by a
// fresh node key whose token the issuer key in keyFile signed with kid.
func (rb *runbook) signedBy(keyFile, kid, id, address string) *registry.Service {
	t := rb.t
	issuerKey, err := signing.ParsePrivateKeyPEM([]byte(readFile(t, keyFile)))
	if err != nil {
		t.Fatal(err)
	}
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &signing.Issuer{Key: issuerKey, KeyID: kid}
	token, err := issuer.Issue(signing.Identity{Subject: "greeter", NodeKey: nodeKey.Public().(ed25519.PublicKey), Services: []string{runbookService}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := signing.NewCredentials(nodeKey, token)
	if err != nil {
		t.Fatal(err)
	}
	return signedService(t, creds, id, address)
}

// signedService returns a greeter service with node id at address, signed
// with creds.
func signedService(t *testing.T, creds *signing.Credentials, id, address string) *registry.Service {
	t.Helper()
	signer, err := signing.NewSigner(creds)
	if err != nil {
		t.Fatal(err)
	}
	svc, _, err := signer.Sign(&registry.Service{Name: runbookService, Version: "latest", Nodes: []*registry.Node{{Id: id, Address: address, Metadata: map[string]string{"server": "mucp"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// attack registers svc with the attacker's registry and waits until the
// reader's plain registry returns it.
func (rb *runbook) attack(svc *registry.Service) {
	t := rb.t
	if err := rb.b.attacker.Register(svc, runbookTTL); err != nil {
		t.Fatalf("registering rogue node %s: %v", svc.Nodes[0].Id, err)
	}
	id := svc.Nodes[0].Id
	reader := rb.b.reader(t)
	poll := func() bool {
		services, _ := reader.GetService(runbookService)
		for _, s := range services {
			for _, n := range s.Nodes {
				if n.Id == id {
					return true
				}
			}
		}
		return false
	}
	rb.waitFor("the plain registry to return rogue node "+id, poll)
}

// removeAttack deregisters svc with the attacker's registry.
func (rb *runbook) removeAttack(svc *registry.Service) {
	t := rb.t
	if err := rb.b.attacker.Deregister(svc); err != nil {
		t.Fatalf("removing rogue node %s: %v", svc.Nodes[0].Id, err)
	}
	rb.waitStored(slicesWithout(rb.storedIDs(), svc.Nodes[0].Id)...)
}

// waitFor polls cond until it returns true.
func (rb *runbook) waitFor(what string, cond func() bool) {
	t := rb.t
	t.Helper()
	deadline := time.Now().Add(runbookTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", runbookTimeout, what)
		}
		time.Sleep(runbookPoll)
	}
}

// storedIDs returns the sorted ids of the greeter nodes that the server
// stores.
func (rb *runbook) storedIDs() []string {
	var ids []string
	for id := range rb.b.stored(rb.t, runbookService) {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// waitStored polls until the server stores exactly the greeter nodes
// want.
func (rb *runbook) waitStored(want ...string) {
	rb.t.Helper()
	sort.Strings(want)
	var got []string
	rb.waitFor(fmt.Sprintf("the server to store greeter nodes %v", want), func() bool {
		got = rb.storedIDs()
		return strings.Join(got, " ") == strings.Join(want, " ")
	})
}

// clientIDs returns the sorted node ids of greeter that the client
// returns, or the lookup's error.
func (rb *runbook) clientIDs() ([]string, error) {
	services, err := rb.client.GetService(runbookService)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, svc := range services {
		for _, n := range svc.Nodes {
			ids = append(ids, n.Id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// expectLookup makes one lookup through the client and fails the test
// unless it returns exactly the nodes want.
func (rb *runbook) expectLookup(want ...string) {
	t := rb.t
	t.Helper()
	sort.Strings(want)
	got, err := rb.clientIDs()
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the client's lookup of greeter returned %v (error %v), want %v\nclient log:\n%s", got, err, want, rb.clientLog.String())
	}
}

// waitLookup polls the client until a lookup returns exactly want, for
// changes that reach the client with a file reload.
func (rb *runbook) waitLookup(who string, want ...string) {
	rb.t.Helper()
	sort.Strings(want)
	var got []string
	rb.waitFor(fmt.Sprintf("%s to look up greeter nodes %v", who, want), func() bool {
		ids, err := rb.clientIDs()
		got = ids
		return err == nil && strings.Join(got, " ") == strings.Join(want, " ")
	})
}

// expectAuditRow checks that the last signet audit printed a row for node
// id with status.
func (rb *runbook) expectAuditRow(id, status string) {
	rb.t.Helper()
	for _, line := range strings.Split(rb.last.stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 5 && f[2] == id && f[4] == status {
			return
		}
	}
	rb.t.Errorf("the audit has no row for %s with status %s:\n%s", id, status, rb.last.stdout)
}

// expectLog checks that the client logged a line with message and every
// field of fields.
func (rb *runbook) expectLog(message string, fields ...string) {
	rb.t.Helper()
	for _, line := range strings.Split(rb.clientLog.String(), "\n") {
		ok := strings.Contains(line, message)
		for _, f := range fields {
			ok = ok && strings.Contains(line, " "+f+" ")
		}
		if ok {
			return
		}
	}
	rb.t.Errorf("the client logged no line %q with %v:\n%s", message, fields, rb.clientLog)
}

// rejected returns signet_nodes_rejected_total of greeter for reason.
func (rb *runbook) rejected(reason string) float64 {
	families, err := rb.gathered.Gather()
	if err != nil {
		rb.t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "signet_nodes_rejected_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] == runbookService && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// storedToken returns the identity token of a stored record, or "".
func storedToken(md map[string]string) string {
	signed, err := record.Parse(md)
	if err != nil {
		return ""
	}
	return signed.Token
}

// tokenIDOf returns the jti of token, decoded without verification.
func tokenIDOf(t *testing.T, token string) string {
	t.Helper()
	claims := &signing.Claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("decoding a token: %v", err)
	}
	return claims.ID
}

// discardLogger drops every line; the nodes' logs are not checked.
type discardLogger struct{}

func (discardLogger) Init(...logger.Option) error           { return nil }
func (discardLogger) Options() logger.Options               { return logger.Options{Level: logger.FatalLevel} }
func (l discardLogger) Fields(map[string]any) logger.Logger { return l }
func (discardLogger) Log(logger.Level, ...any)              {}
func (discardLogger) Logf(logger.Level, string, ...any)     {}
func (discardLogger) String() string                        { return "discard" }

var discardLog logger.Logger = discardLogger{}

// randomSecret returns 32 random hexadecimal characters.
func randomSecret() string {
	var b [16]byte
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newBackendRegistry builds a plain registry with backend.New.
func newBackendRegistry(t *testing.T, cfg backend.Config) registry.Registry {
	t.Helper()
	cfg.Logger = discardLog
	r, err := backend.New(cfg)
	if err != nil {
		t.Fatalf("backend.New(%v): %v", cfg, err)
	}
	return r
}

// startRunbookEtcd starts etcd with client TLS and authentication, creates
// the users and roles of the guide's etcd table, and places the files that
// the guide's etcd exports name into dir.
func startRunbookEtcd(t *testing.T, doc *runbookDoc, dir string) *runbookBackend {
	t.Helper()
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true, Auth: true})
	for from, to := range map[string]string{srv.CAFile: "etcd-ca.pem", srv.CertFile: "etcd-client.pem", srv.KeyFile: "etcd-client.key"} {
		if err := os.WriteFile(filepath.Join(dir, to), []byte(readFile(t, from)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	rootConfig := srv.ClientConfig()
	rootConfig.Username, rootConfig.Password = srv.RootUsername, srv.RootPassword
	rootConfig.Logger = zap.NewNop()
	root, err := clientv3.New(rootConfig)
	if err != nil {
		t.Fatalf("connecting to etcd as root: %v", err)
	}
	t.Cleanup(func() { root.Close() })

	if len(doc.etcdACL) == 0 {
		t.Fatal("the guide has no etcd user table")
	}
	passwords := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for user, perms := range doc.etcdACL {
		role := "role-" + user
		passwords[user] = randomSecret()
		if _, err := root.RoleAdd(ctx, role); err != nil {
			t.Fatalf("adding etcd role %s: %v", role, err)
		}
		for _, p := range perms {
			perm := clientv3.PermissionType(clientv3.PermRead)
			if p.write {
				perm = clientv3.PermissionType(clientv3.PermReadWrite)
			}
			if _, err := root.RoleGrantPermission(ctx, role, p.prefix, clientv3.GetPrefixRangeEnd(p.prefix), perm); err != nil {
				t.Fatalf("granting %v on %s to etcd role %s: %v", perm, p.prefix, role, err)
			}
		}
		if _, err := root.UserAdd(ctx, user, passwords[user]); err != nil {
			t.Fatalf("adding etcd user %s: %v", user, err)
		}
		if _, err := root.UserGrantRole(ctx, user, role); err != nil {
			t.Fatalf("granting etcd role %s to %s: %v", role, user, err)
		}
		if err := os.WriteFile(filepath.Join(dir, user+".password"), []byte(passwords[user]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range []string{runbookService, "signet-audit", "signet-purge"} {
		if _, ok := passwords[user]; !ok {
			t.Fatalf("the guide's etcd table has no user %s", user)
		}
	}

	as := func(user, password string) func(t *testing.T) registry.Registry {
		return func(t *testing.T) registry.Registry {
			return newBackendRegistry(t, backend.Config{
				Registry: backend.Etcd, Addresses: srv.Endpoints,
				TLSCAFile: srv.CAFile, TLSCertFile: srv.CertFile, TLSKeyFile: srv.KeyFile,
				EtcdUsername: user, EtcdPassword: password,
			})
		}
	}
	return &runbookBackend{
		kind:     backend.Etcd,
		vars:     map[string]string{"ETCD_ENDPOINTS": strings.Join(srv.Endpoints, ",")},
		service:  as(runbookService, passwords[runbookService]),
		reader:   as("signet-audit", passwords["signet-audit"]),
		attacker: as(srv.RootUsername, srv.RootPassword)(t),
		stored: func(t *testing.T, service string) map[string]map[string]string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := root.Get(ctx, etcdKeyPrefix+service+"/", clientv3.WithPrefix())
			if err != nil {
				t.Fatalf("reading the etcd keys of %s: %v", service, err)
			}
			nodes := map[string]map[string]string{}
			for _, kv := range resp.Kvs {
				var svc registry.Service
				if err := json.Unmarshal(kv.Value, &svc); err != nil {
					t.Fatalf("etcd key %s does not hold a go-micro service: %v", kv.Key, err)
				}
				for _, n := range svc.Nodes {
					nodes[n.Id] = n.Metadata
				}
			}
			return nodes
		},
	}
}

// startRunbookConsul starts Consul with ACLs, creates a token for each
// policy of the guide's hcl blocks, serves Consul's HTTP API over TLS on
// another loopback port, and places the files that the guide's Consul
// exports name into dir.
func startRunbookConsul(t *testing.T, doc *runbookDoc, dir string) *runbookBackend {
	t.Helper()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	admin, err := api.NewClient(&api.Config{Address: srv.Addr, Scheme: "http", Token: srv.ManagementToken})
	if err != nil {
		t.Fatalf("connecting to Consul at %s: %v", srv.Addr, err)
	}

	tokens := map[string]string{}
	for name, rules := range doc.policies {
		if _, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
			t.Fatalf("creating Consul policy %s from the guide: %v", name, err)
		}
		token, _, err := admin.ACL().TokenCreate(&api.ACLToken{Description: name, Policies: []*api.ACLTokenPolicyLink{{Name: name}}}, nil)
		if err != nil {
			t.Fatalf("creating a Consul token for policy %s: %v", name, err)
		}
		tokens[name] = token.SecretID
	}
	for _, name := range []string{"signet-greeter", "signet-audit", "signet-purge"} {
		if _, ok := tokens[name]; !ok {
			t.Fatalf("the guide has no Consul policy %s", name)
		}
	}
	for _, name := range []string{"signet-audit", "signet-purge"} {
		if err := os.WriteFile(filepath.Join(dir, name+".token"), []byte(tokens[name]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	caFile := filepath.Join(dir, "consul-ca.pem")
	proxy := startTLSProxy(t, srv.Addr, caFile)
	address := "https://" + proxy
	as := func(token string) func(t *testing.T) registry.Registry {
		return func(t *testing.T) registry.Registry {
			return newBackendRegistry(t, backend.Config{Registry: backend.Consul, Addresses: []string{address}, TLSCAFile: caFile, ConsulToken: token})
		}
	}
	return &runbookBackend{
		kind:     backend.Consul,
		vars:     map[string]string{"CONSUL_ADDRESS": address},
		service:  as(tokens["signet-greeter"]),
		reader:   as(tokens["signet-audit"]),
		attacker: as(srv.ManagementToken)(t),
		stored: func(t *testing.T, service string) map[string]map[string]string {
			t.Helper()
			entries, _, err := admin.Catalog().Service(service, "", nil)
			if err != nil {
				t.Fatalf("reading the Consul catalog of %s: %v", service, err)
			}
			nodes := map[string]map[string]string{}
			for _, e := range entries {
				nodes[e.ServiceID] = e.ServiceMeta
			}
			return nodes
		},
	}
}

// startTLSProxy serves the HTTP API at target over TLS on a loopback port,
// with a server certificate for 127.0.0.1 from a new CA whose certificate
// it writes to caFile, and returns the proxy's host:port. The test Consul
// agent serves plain HTTP only.
func startTLSProxy(t *testing.T, target, caFile string) string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "signet runbook test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}

	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	proxy.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}},
		MinVersion:   tls.VersionTLS12,
	}
	proxy.StartTLS()
	t.Cleanup(func() {
		// Consul watches are blocking queries that Close would wait for.
		proxy.CloseClientConnections()
		proxy.Close()
	})
	return strings.TrimPrefix(proxy.URL, "https://")
}

// TestConsulAuditPurge is TestEtcdAuditPurge against a real Consul agent
// with ACLs off; TestRunbook covers Consul with ACLs and least-privilege
// tokens. The audits and purges name their services, because Consul lists
// its own service, consul, which is not signed.
func TestConsulAuditPurge(t *testing.T) {
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	p := newPoisoned(t, newBackendRegistry(t, backend.Config{Registry: backend.Consul, Addresses: []string{srv.Addr}}))
	p.registerGenuine(t, "greeter", "greeter-1", "127.0.0.1:9001")
	p.registerGenuine(t, "greeter", "greeter-2", "127.0.0.1:9002")
	p.registerGenuine(t, "billing", "billing-1", "127.0.0.1:9101")
	p.addRogues(t)

	// A rogue registration under the node id of greeter-2 replaces it:
	// the id is the Consul service id.
	p.registerRaw(t, testid.Service("greeter", "greeter-2", "127.0.0.1:6665"))

	command := func() *command {
		c := p.command()
		// Consul applies an agent's deregistration to the health endpoint
		// asynchronously.
		c.removalTimeout = 10 * time.Second
		return c
	}
	want := map[string]string{"greeter-1": "ok", "billing-1": "ok", "greeter-2": "unsigned"}
	for id, reason := range rogueNodes {
		want[id] = reason
	}
	var audit result
	var nodes map[string]nodeJSON
	deadline := time.Now().Add(runbookTimeout)
	for {
		audit = runCommand(command(), "audit", "-json", "-service", "greeter,billing")
		nodes = auditNodes(t, audit.stdout)
		if len(nodes) == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(runbookPoll)
	}
	if audit.code != exitInvalid {
		t.Fatalf("audit exit status %d, want 1\n%s%s", audit.code, audit.stdout, audit.stderr)
	}
	for id, status := range want {
		if got := nodes[id].Status; got != status {
			t.Errorf("audit status of %s = %q, want %q", id, got, status)
		}
	}
	if !strings.Contains(audit.stderr, "of the consul registry") {
		t.Errorf("audit did not go through the consul backend: %q", audit.stderr)
	}

	if dry := runCommand(command(), "purge", "-service", "greeter"); dry.code != exitInvalid {
		t.Errorf("purge dry run exit status %d, want 1\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	if got := nodeIDs(t, p.inner, "greeter"); len(got) != 2+len(rogueNodes) {
		t.Errorf("greeter nodes after the dry run = %v; the dry run changed the registry", got)
	}

	purge := runCommand(command(), "purge", "-yes", "-service", "greeter")
	if purge.code != exitOK {
		t.Fatalf("purge -yes exit status %d, want 0\n%s%s", purge.code, purge.stdout, purge.stderr)
	}
	if n := strings.Count(purge.stdout, "removed service greeter"); n != len(rogueNodes)+1 {
		t.Errorf("purge reported %d removals, want %d:\n%s", n, len(rogueNodes)+1, purge.stdout)
	}
	if got := nodeIDs(t, p.inner, "greeter"); strings.Join(got, " ") != "greeter-1" {
		t.Errorf("greeter nodes after purge = %v, want [greeter-1]", got)
	}
	if got := nodeIDs(t, p.inner, "billing"); strings.Join(got, " ") != "billing-1" {
		t.Errorf("billing nodes after purge = %v, want [billing-1]", got)
	}
	if again := runCommand(command(), "audit", "-service", "greeter,billing"); again.code != exitOK {
		t.Errorf("audit after purge: exit status %d\n%s%s", again.code, again.stdout, again.stderr)
	}
}

// auditNodes decodes the lines of audit -json by node id.
func auditNodes(t *testing.T, stdout string) map[string]nodeJSON {
	t.Helper()
	nodes := map[string]nodeJSON{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var n nodeJSON
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatalf("audit -json line %q is not JSON: %v", line, err)
		}
		nodes[n.Node] = n
	}
	return nodes
}
