package backend

import (
	"testing"

	"github.com/signet-micro/signet/internal/testserver"
	signetregistry "github.com/signet-micro/signet/registry"
)

// TestKubernetesSkipsVerification shows the fact that New warns about: the
// kubernetes plugin, given an https:// address, talks to an API server
// whose certificate no configured CA signed, and sends no credentials
// (StartKube lets anonymous requests patch pods).
func TestKubernetesSkipsVerification(t *testing.T) {
	kube := testserver.StartKube(t)
	kube.CreatePod(t, "default", "greeter-pod", "127.0.0.2")
	// The plugin annotates the pod named by HOSTNAME, as in a real pod.
	t.Setenv("HOSTNAME", "greeter-pod")

	log := newRecordingLogger()
	r, err := New(Config{Registry: Kubernetes, Addresses: []string{kube.Host}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if log.Text() == "" {
		t.Error("New logged no warning for a kubernetes address")
	}
	if reason := signetregistry.InsecureReason(r); reason == "" {
		t.Error("registry.InsecureReason returned \"\" for the kubernetes plugin")
	}

	assertRegisterAndGet(t, r, "greeter")

	pod := kube.GetPod(t, "default", "greeter-pod")
	if len(pod.Metadata.Annotations) == 0 {
		t.Error("the pod has no annotations, so the registration did not reach the API server")
	}
}
