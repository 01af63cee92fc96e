package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds the wait for a server to become ready. It is
	// generous because `go test ./...` runs several test binaries at once on
	// small CI machines, and kube-apiserver alone needs several seconds.
	startTimeout = 90 * time.Second

	// stopTimeout bounds the wait for a child process to exit after SIGTERM
	// before it is sent SIGKILL.
	stopTimeout = 15 * time.Second

	// pollInterval is the pause between two readiness checks.
	pollInterval = 100 * time.Millisecond

	// outputTailBytes is the amount of a server's most recent output kept
	// for failure messages.
	outputTailBytes = 64 << 10

	// signetModulePath identifies the repository root while walking up
	// from the test's working directory.
	signetModulePath = "github.com/signet-micro/signet"
)

// outputTail is an io.Writer that keeps only the last max bytes written to it.
// It is safe for concurrent use.
type outputTail struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int64 // bytes removed from the front of buf
}

func newOutputTail() *outputTail {
	return &outputTail{max: outputTailBytes}
}

func (o *outputTail) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()

	o.buf = append(o.buf, p...)
	if excess := len(o.buf) - o.max; excess > 0 {
		o.dropped += int64(excess)
		o.buf = append(o.buf[:0], o.buf[excess:]...)
	}

	return len(p), nil
}

// mark returns a position in the output for since.
func (o *outputTail) mark() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()

	return o.dropped + int64(len(o.buf))
}

// since returns the kept output written after mark was taken.
func (o *outputTail) since(mark int64) string {
	o.mu.Lock()
	defer o.mu.Unlock()

	start := max(mark-o.dropped, 0)
	if start > int64(len(o.buf)) {
		return ""
	}

	return string(o.buf[start:])
}

// String returns the kept output, prefixed by a note when older output was
// dropped.
func (o *outputTail) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()

	if len(o.buf) == 0 {
		return "(no output)"
	}
	if o.dropped > 0 {
		return fmt.Sprintf("(%d earlier bytes dropped)\n%s", o.dropped, o.buf)
	}

	return string(o.buf)
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// checked. All n listeners stay open until every port is picked, so the
// ports differ from each other.
//
// NOTE: another process can still take a port between this check and the
// server's bind. Starters retry with new ports when a bind fails that way.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()

	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}

	return ports, nil
}

// isAddrInUse reports whether err or a server's output shows that a listen
// address was taken.
func isAddrInUse(err error, output string) bool {
	if errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		return true
	}

	return strings.Contains(output, "address already in use")
}

// repoRoot returns the directory of the go.mod that declares the signet
// module, searching from the working directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}

	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(data) == signetModulePath {
			return dir, nil
		}

		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s found above the working directory", signetModulePath)
		}
		dir = parent
	}
}

// modulePath returns the path on the module line of go.mod data, or "".
func modulePath(gomod []byte) string {
	for line := range bytes.Lines(gomod) {
		fields := strings.Fields(string(line))
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`)
		}
	}

	return ""
}

// ToolsDirEnv names the environment variable that sets the folder into
// which .ci/build-tools.sh builds the server binaries and from which the
// starters take them. It defaults to <repo>/.tools/bin.
const ToolsDirEnv = "SIGNET_TOOLS_DIR"

// findBinary returns the path of a server binary: $envVar when set, else
// name in $SIGNET_TOOLS_DIR, else <repo>/.tools/bin/name. It fails the test
// when the binary is missing.
func findBinary(t testing.TB, envVar, name string) string {
	t.Helper()

	path := os.Getenv(envVar)
	if path == "" && os.Getenv(ToolsDirEnv) != "" {
		path = filepath.Join(os.Getenv(ToolsDirEnv), name)
	}
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("locate %s: %v. Set %s to its path, or run `bash .ci/build-tools.sh` in the repository", name, err, envVar)
		}
		path = filepath.Join(root, ".tools", "bin", name)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s binary not found at %s (%v): run `bash .ci/build-tools.sh` from the repository root, or set %s", name, path, err, envVar)
	}
	if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s at %s is not an executable file: run `bash .ci/build-tools.sh` from the repository root, or set %s", name, path, envVar)
	}

	return path
}

// process is a server child process whose stdout and stderr go to output.
type process struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // valid once done is closed
}

// startProcess starts binary with args and extra environment variables added
// to the test's own environment.
func startProcess(name, binary string, args, env []string, output *outputTail) (*process, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = output
	cmd.Stderr = output
	setParentDeathSignal(cmd)

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}

	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	return p, nil
}

// exitError describes how the process ended. Call it only after done is
// closed.
func (p *process) exitError() error {
	if p.waitErr == nil {
		return fmt.Errorf("%s exited with status 0", p.name)
	}

	return fmt.Errorf("%s exited: %w", p.name, p.waitErr)
}

// stop sends SIGTERM, waits up to stopTimeout, then sends SIGKILL. It
// returns once the process has exited.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}

	// An error here means the process has already exited, and done is
	// about to close.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)

	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// pollUntilReady calls check every pollInterval until it returns nil. It
// returns an error carrying the last check error when timeout passes, or at
// once when exited is closed (a nil exited never closes).
func pollUntilReady(timeout time.Duration, exited <-chan struct{}, exitErr func() error, check func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()

	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()

	for {
		lastErr := check()
		if lastErr == nil {
			return nil
		}

		select {
		case <-exited:
			return exitErr()
		case <-deadline.C:
			return fmt.Errorf("not ready after %v: %w", timeout, lastErr)
		case <-ticker.C:
		}
	}
}
