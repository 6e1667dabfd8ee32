package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/internal/dataplane"
)

// StartTraefik runs a real Traefik (bin/traefik, built by hack/traefik.sh)
// against the cluster's apiserver with the kubernetescrd provider, and the
// kubernetesgateway one when gateway is set, sending to Services'
// ClusterIPs, until the test ends. A failed test logs the end of its log.
func (c *Cluster) StartTraefik(t testing.TB, gateway bool) *dataplane.Traefik {
	t.Helper()
	bin := filepath.Join(c.Root, "bin", "traefik")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/traefik: %v: build it with hack/traefik.sh build traefik (make test and make e2e do)", err)
	}
	ca := c.Config.CAFile
	if ca == "" {
		ca = filepath.Join(t.TempDir(), "ca.crt")
		if err := os.WriteFile(ca, c.Config.CAData, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tr, err := dataplane.StartTraefik(ctx, dataplane.TraefikOptions{Bin: bin, APIServer: c.Config.Host, Token: c.Config.BearerToken,
		CAFile: ca, WebAddr: FreeAddr(t), AdminAddr: FreeAddr(t), Gateway: gateway})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Stop()
		if t.Failed() {
			t.Logf("traefik log (tail):\n%s", Tail(tr.Log(), 40))
		}
	})
	return tr
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// IngressRoute is a user's Traefik IngressRoute on the web entry point,
// sending the host's requests to service (its name, and kind
// TraefikService or port for a Service).
func IngressRoute(ns, name, host string, service map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"entryPoints": []any{"web"}, "routes": []any{map[string]any{
			"match": "Host(`" + host + "`)", "kind": "Rule", "services": []any{service}}}},
	}}
}
