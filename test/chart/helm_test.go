// Tests of the Helm chart (charts/sluice) with the real helm CLI: bin/helm
// is built from helm.sh/helm/v4 by hack/helm.sh build, which make harness
// runs; HELM_BIN names another build of it. Lint and rendering need no
// cluster; the server-side dry run and the install, upgrade and uninstall
// cycle run against the shared local control plane.
package chart_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// helmCLI runs bin/helm with empty config, cache and data folders of its
// own, so a developer's repositories and plugins play no part.
type helmCLI struct {
	t    testing.TB
	bin  string
	root string
	env  []string
}

// newHelm finds bin/helm: missing, it skips the test in -short mode and
// fails it otherwise. kubeconfig "" points helm at no cluster at all.
func newHelm(t testing.TB, kubeconfig string) *helmCLI {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("HELM_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skip("bin/helm not built (hack/helm.sh build)")
		}
		t.Fatalf("%s: %v: build it with hack/helm.sh build (make harness does)", bin, err)
	}
	home := t.TempDir()
	if kubeconfig == "" {
		kubeconfig = filepath.Join(home, "no-cluster")
	}
	env := append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	return &helmCLI{t: t, bin: bin, root: root, env: env}
}

// chart is the chart's folder.
func (h *helmCLI) chart() string { return filepath.Join(h.root, "charts", "sluice") }

// run runs helm with a deadline and returns its standard output; an error
// carries its standard error.
func (h *helmCLI) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// must runs helm and fails the test when it fails.
func (h *helmCLI) must(timeout time.Duration, args ...string) string {
	h.t.Helper()
	out, err := h.run(timeout, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// render runs helm template for a release in a namespace with the given
// extra arguments (--set, --include-crds) and decodes what it prints.
func (h *helmCLI) render(release, namespace string, args ...string) []unstructured.Unstructured {
	h.t.Helper()
	out := h.must(time.Minute, append([]string{"template", release, h.chart(), "--namespace", namespace}, args...)...)
	objs, err := decodeAll([]byte(out))
	if err != nil {
		h.t.Fatalf("decode helm template's output: %v\n%s", err, out)
	}
	return objs
}

// decodeAll decodes a stream of YAML documents, skipping empty ones.
func decodeAll(b []byte) ([]unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, unstructured.Unstructured{Object: m})
	}
}

// decodeFile decodes the YAML documents of a repository file.
func decodeFile(t testing.TB, root, rel string) []unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll(b)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return objs
}

// find returns the one object of a kind (and name, unless empty), into a
// typed object when into is not nil.
func find(t testing.TB, objs []unstructured.Unstructured, kind, name string, into any) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for i := range objs {
		if objs[i].GetKind() == kind && (name == "" || objs[i].GetName() == name) {
			found = append(found, &objs[i])
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %q, found %d among %s", kind, name, len(found), kinds(objs))
	}
	if into != nil {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(found[0].Object, into); err != nil {
			t.Fatalf("%s %s: %v", kind, found[0].GetName(), err)
		}
	}
	return found[0]
}

// kinds lists kind/name of each object, for messages.
func kinds(objs []unstructured.Unstructured) string {
	var s []string
	for _, o := range objs {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(s, ", ")
}
