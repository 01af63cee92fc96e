package testserver

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// KubeAPIServerBinaryEnv names the environment variable that overrides the
// path of the kube-apiserver binary.
const KubeAPIServerBinaryEnv = "SIGNET_KUBE_APISERVER_BIN"

// Findings from reading github.com/go-micro/plugins/v4/registry/kubernetes
// v1.1.2 (kubernetes.go, client/client.go, client/api/request.go), for tests
// that drive that plugin against StartKube:
//
//   - Connection: with registry.Addrs(host) the plugin uses host as the API
//     base URL, e.g. Kube.Host. Its HTTP client skips TLS verification and
//     sends no token, so requests are anonymous (user system:anonymous,
//     group system:unauthenticated). kube-apiserver 1.31 turns anonymous
//     auth off when the authorizer is AlwaysAllow, so StartKube runs with
//     --anonymous-auth=true and --authorization-mode=RBAC, and binds the
//     ClusterRole kubeRegistryRole (get, list, watch and patch on pods) to
//     group system:unauthenticated. The plugin's README requires list,
//     patch and watch on pods for the plugin's service account.
//     registry.Timeout is stored but never applied to HTTP requests. Without
//     Addrs the plugin assumes it runs in a pod: it builds the host from
//     KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT and reads token,
//     namespace and ca.crt from /var/run/secrets/kubernetes.io/serviceaccount,
//     calling logger.Fatal (process exit) when they are missing. Tests must
//     always pass Addrs.
//   - Namespace: fixed to "default" when Addrs is set. No environment
//     variable such as KUBERNETES_NAMESPACE is read.
//   - Pod name: Register and Deregister patch the pod named by $HOSTNAME
//     and fail with "failed to get podname from HOSTNAME variable" when it
//     is empty. A test sets it with t.Setenv("HOSTNAME", name), which rules
//     out t.Parallel for that test.
//   - Register sends PATCH /api/v1/namespaces/default/pods/$HOSTNAME with
//     Content-Type application/strategic-merge-patch+json and sets
//     label micro.mu/type=service,
//     label micro.mu/selector-<name>=service, and
//     annotation micro.mu/service-<name> = the registry.Service as JSON.
//     <name> is the service name with every byte outside [-A-Za-z0-9_.]
//     replaced by '_'. The label key's name part (after the slash) must still
//     be a valid Kubernetes label name of at most 63 characters, so
//     "selector-" plus the name may have at most 63 characters.
//   - Deregister sends the same PATCH with that label and annotation set to
//     null, which removes them. micro.mu/type stays.
//   - GetService lists GET /api/v1/namespaces/default/pods/?labelSelector=
//     micro.mu/selector-<name>=service and returns registry.ErrNotFound for
//     no pods. It skips pods whose status.phase is not "Running" or that
//     have metadata.deletionTimestamp, and decodes the annotation, so node
//     addresses come from the registered JSON, never from status.podIP.
//     Services are merged by version.
//   - ListServices lists with labelSelector micro.mu/type=service and decodes
//     every micro.mu/service-* annotation of running pods.
//   - Watch uses the same list URLs with watch=true (the per-service selector
//     when registry.WatchService is given).
//   - Errors: HTTP 404 becomes "pod not found". Other statuses except 200,
//     201 and 204 are logged through go-micro's logger and become
//     "unspecified error occurred in k8s registry".
//
// Because no kubelet runs, CreatePod sets the Running phase and pod IP
// through the pods/status subresource itself.

// Kube is a kube-apiserver on 127.0.0.1 backed by its own embedded etcd,
// with what a client needs to reach it.
type Kube struct {
	// Host is the API base URL, "https://127.0.0.1:PORT".
	Host string

	// CAFile is the PEM file of the CA that signed the serving certificate,
	// and TLSConfig verifies the server against it.
	CAFile    string
	TLSConfig *tls.Config

	// Token is a static bearer token of a user in group system:masters,
	// which may do anything. Anonymous requests may only get, list, watch
	// and patch pods, which is what the go-micro kubernetes registry needs.
	Token string

	// Etcd is the storage server of this apiserver.
	Etcd *Etcd

	t      testing.TB
	binary string
	dir    string
	output *outputTail
	client *http.Client

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartKube starts kube-apiserver on a free loopback port, with a plain
// embedded etcd as storage, waits until /readyz returns ok and the
// "default" namespace exists, and registers t.Cleanup to stop both. It
// fails the test when the kube-apiserver binary is missing.
func StartKube(t testing.TB) *Kube {
	t.Helper()

	k := &Kube{
		t:      t,
		binary: findBinary(t, KubeAPIServerBinaryEnv, "kube-apiserver"),
		dir:    t.TempDir(),
		output: newOutputTail(),
		Token:  randomHex(16),
	}
	k.Etcd = StartEtcd(t, EtcdOptions{})

	if err := k.writeFiles(); err != nil {
		t.Fatalf("prepare kube-apiserver files: %v", err)
	}
	k.client = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: k.TLSConfig},
	}

	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var ports []int
		ports, err = freePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		k.Host = "https://127.0.0.1:" + strconv.Itoa(ports[0])

		mark := k.output.mark()
		err = k.start(ports[0])
		if err == nil || !isAddrInUse(err, k.output.since(mark)) {
			break
		}
		t.Logf("kube-apiserver could not bind its port (attempt %d of %d), retrying with a new port: %v", attempt, startAttempts, err)
	}
	if err != nil {
		t.Fatalf("start kube-apiserver: %v\nkube-apiserver output tail:\n%s", err, k.output)
	}
	if err := k.allowAnonymousPodAccess(); err != nil {
		k.Stop()
		t.Fatalf("grant anonymous pod access: %v\nkube-apiserver output tail:\n%s", err, k.output)
	}

	t.Cleanup(func() {
		k.Stop()
		k.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("kube-apiserver output tail:\n%s", k.output)
		}
	})

	return k
}

// Stop stops kube-apiserver. Its etcd keeps running until the test ends.
// Stopping a stopped server does nothing.
func (k *Kube) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()

	if k.proc != nil {
		k.proc.stop()
		k.proc = nil
	}
}

// writeFiles writes the serving certificate, the service account key and the
// static token file into k.dir, and sets CAFile and TLSConfig.
func (k *Kube) writeFiles() error {
	certs, err := writeTestPKI(k.dir)
	if err != nil {
		return fmt.Errorf("generate TLS certificates: %w", err)
	}
	pool, err := certPoolFromFile(certs.CAFile)
	if err != nil {
		return fmt.Errorf("load CA: %w", err)
	}
	k.CAFile = certs.CAFile
	k.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service account key: %w", err)
	}
	if err := writePEM(k.serviceAccountKeyFile(), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}

	// The token file is CSV: token,user,uid,"group1,group2".
	tokens := fmt.Sprintf("%s,signet-test-admin,signet-test-admin,\"system:masters\"\n", k.Token)
	if err := os.WriteFile(k.tokenFile(), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}

	return nil
}

func (k *Kube) serviceAccountKeyFile() string { return filepath.Join(k.dir, "service-account-key.pem") }
func (k *Kube) tokenFile() string             { return filepath.Join(k.dir, "tokens.csv") }

func (k *Kube) args(port int) []string {
	return []string{
		"--etcd-servers=" + k.Etcd.Endpoints[0],
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(k.dir, "cert-dir"),
		"--tls-cert-file=" + filepath.Join(k.dir, "server.pem"),
		"--tls-private-key-file=" + filepath.Join(k.dir, "server-key.pem"),
		"--service-account-key-file=" + k.serviceAccountKeyFile(),
		"--service-account-signing-key-file=" + k.serviceAccountKeyFile(),
		"--service-account-issuer=https://kubernetes.default.svc",
		// The service IP range is configuration only: no component of
		// this test setup routes to it.
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--anonymous-auth=true",
		"--token-auth-file=" + k.tokenFile(),
		// No kube-controller-manager runs, so nothing creates the
		// "default" service account that this admission plugin requires
		// for every new pod.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
}

// start starts kube-apiserver on port and waits until it is ready.
func (k *Kube) start(port int) error {
	k.mu.Lock()
	defer k.mu.Unlock()

	if k.proc != nil {
		return errors.New("kube-apiserver is already running")
	}

	proc, err := startProcess("kube-apiserver", k.binary, k.args(port), nil, k.output)
	if err != nil {
		return err
	}

	if err := pollUntilReady(startTimeout, proc.done, proc.exitError, k.checkReady); err != nil {
		proc.stop()
		return err
	}
	k.proc = proc

	return nil
}

// checkReady returns nil once /readyz returns ok and the "default"
// namespace, which a controller inside kube-apiserver creates after start,
// exists.
func (k *Kube) checkReady() error {
	status, body, err := k.do(http.MethodGet, "/readyz", "", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /readyz: status %d: %s", status, lastLines(body, 5))
	}

	status, body, err = k.do(http.MethodGet, "/api/v1/namespaces/default", "", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET namespace default: status %d: %s", status, body)
	}

	return nil
}

// kubeRegistryRole is the ClusterRole that StartKube binds to anonymous
// requests.
const kubeRegistryRole = "signet-test-micro-registry"

// allowAnonymousPodAccess binds kubeRegistryRole to the group
// system:unauthenticated, then waits until an anonymous pod list succeeds,
// because the RBAC authorizer applies a new binding only once its informer
// cache contains it.
func (k *Kube) allowAnonymousPodAccess() error {
	role := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "ClusterRole",
		"metadata":   map[string]any{"name": kubeRegistryRole},
		"rules": []map[string]any{{
			"apiGroups": []string{""},
			"resources": []string{"pods"},
			"verbs":     []string{"get", "list", "watch", "patch"},
		}},
	}
	const rbacPath = "/apis/rbac.authorization.k8s.io/v1"
	if err := k.requestJSON(http.MethodPost, rbacPath+"/clusterroles", "application/json", role, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("create ClusterRole %s: %w", kubeRegistryRole, err)
	}

	binding := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "ClusterRoleBinding",
		"metadata":   map[string]any{"name": kubeRegistryRole},
		"roleRef": map[string]any{
			"apiGroup": "rbac.authorization.k8s.io",
			"kind":     "ClusterRole",
			"name":     kubeRegistryRole,
		},
		"subjects": []map[string]any{{
			"apiGroup": "rbac.authorization.k8s.io",
			"kind":     "Group",
			"name":     "system:unauthenticated",
		}},
	}
	if err := k.requestJSON(http.MethodPost, rbacPath+"/clusterrolebindings", "application/json", binding, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("create ClusterRoleBinding %s: %w", kubeRegistryRole, err)
	}

	return pollUntilReady(startTimeout, nil, nil, func() error {
		status, body, err := k.doAs("", http.MethodGet, "/api/v1/namespaces/default/pods", "", nil)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("anonymous GET pods: status %d: %s", status, body)
		}
		return nil
	})
}

// CreatePod creates a pod with one container, creating its namespace first
// when needed, and then sets status.phase to Running and status.podIP to
// podIP through the pods/status subresource, as a kubelet would. Nothing
// runs the container. Use 127.0.0.x values for podIP. The pod is not
// deleted at cleanup because its apiserver stops then.
func (k *Kube) CreatePod(t testing.TB, namespace, name, podIP string) {
	t.Helper()

	if err := k.ensureNamespace(namespace); err != nil {
		t.Fatalf("create namespace %s: %v", namespace, err)
	}

	pod := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"containers": []map[string]any{{
				"name": "app",
				// The image is never pulled because no kubelet runs.
				"image": "signet.invalid/test:0",
			}},
		},
	}
	podsPath := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods"
	if err := k.requestJSON(http.MethodPost, podsPath, "application/json", pod, http.StatusCreated, nil); err != nil {
		t.Fatalf("create pod %s/%s: %v", namespace, name, err)
	}

	patch := map[string]any{
		"status": map[string]any{
			"phase":  "Running",
			"podIP":  podIP,
			"podIPs": []map[string]string{{"ip": podIP}},
		},
	}
	var updated Pod
	statusPath := podsPath + "/" + url.PathEscape(name) + "/status"
	if err := k.requestJSON(http.MethodPatch, statusPath, "application/merge-patch+json", patch, http.StatusOK, &updated); err != nil {
		t.Fatalf("set status of pod %s/%s to Running with pod IP %s: %v", namespace, name, podIP, err)
	}
	if updated.Status.Phase != "Running" || updated.Status.PodIP != podIP {
		t.Fatalf("pod %s/%s after status update: phase %q, pod IP %q, want Running and %s", namespace, name, updated.Status.Phase, updated.Status.PodIP, podIP)
	}
}

// Pod contains the fields of a Kubernetes pod that the go-micro kubernetes
// registry reads and writes.
type Pod struct {
	Metadata struct {
		Name              string            `json:"name"`
		Namespace         string            `json:"namespace"`
		Labels            map[string]string `json:"labels"`
		Annotations       map[string]string `json:"annotations"`
		DeletionTimestamp string            `json:"deletionTimestamp"`
	} `json:"metadata"`
	Status struct {
		Phase string `json:"phase"`
		PodIP string `json:"podIP"`
	} `json:"status"`
}

// GetPod returns the pod's metadata and status as the apiserver stores them.
func (k *Kube) GetPod(t testing.TB, namespace, name string) *Pod {
	t.Helper()

	var pod Pod
	path := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(name)
	if err := k.requestJSON(http.MethodGet, path, "", nil, http.StatusOK, &pod); err != nil {
		t.Fatalf("get pod %s/%s: %v", namespace, name, err)
	}

	return &pod
}

// ensureNamespace creates the namespace unless it exists.
func (k *Kube) ensureNamespace(namespace string) error {
	status, body, err := k.do(http.MethodGet, "/api/v1/namespaces/"+url.PathEscape(namespace), "", nil)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		return nil
	}
	if status != http.StatusNotFound {
		return fmt.Errorf("GET namespace: status %d: %s", status, body)
	}

	ns := map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": namespace},
	}

	return k.requestJSON(http.MethodPost, "/api/v1/namespaces", "application/json", ns, http.StatusCreated, nil)
}

// requestJSON sends in as a JSON body (unless in is nil), expects
// wantStatus, and decodes the response into out (unless out is nil).
func (k *Kube) requestJSON(method, path, contentType string, in any, wantStatus int, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}

	status, respBody, err := k.do(method, path, contentType, body)
	if err != nil {
		return err
	}
	if status != wantStatus {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, status, wantStatus, respBody)
	}
	if out == nil {
		return nil
	}

	return json.Unmarshal(respBody, out)
}

// do sends a request authenticated with Token and returns the status and body.
func (k *Kube) do(method, path, contentType string, body []byte) (int, []byte, error) {
	return k.doAs(k.Token, method, path, contentType, body)
}

// doAs sends a request with a bearer token, or anonymously when token is "".
func (k *Kube) doAs(token, method, path, contentType string, body []byte) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}

	req, err := http.NewRequest(method, k.Host+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}

	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()

	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read response of %s %s: %w", method, path, err)
	}

	return resp.StatusCode, bytes.TrimSpace(respBody), nil
}

// lastLines returns the last n lines of text, for short error messages.
func lastLines(text []byte, n int) string {
	lines := strings.Split(string(text), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return strings.Join(lines, "\n")
}
