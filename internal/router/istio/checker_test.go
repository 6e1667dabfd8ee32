package istio_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// What Sluice writes is also checked by Istio itself: bin/istiocheck is
// built from istio.io/istio's own conversion (what istiod does with an
// object it reads) and validation (what its admission webhook refuses)
// by hack/istio.sh build, which make harness runs. ISTIOCHECK names
// another build of it.

type istioChecker struct {
	t   testing.TB
	in  *json.Encoder
	out *bufio.Scanner
}

func newIstioChecker(t testing.TB) *istioChecker {
	t.Helper()
	bin := os.Getenv("ISTIOCHECK")
	if bin == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin", "istiocheck")
	}
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skip("bin/istiocheck not built (hack/istio.sh build)")
		}
		t.Fatalf("%s: %v: build it with hack/istio.sh build (make harness does)", bin, err)
	}
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &istioChecker{t: t, in: json.NewEncoder(stdin), out: sc}
}

// valid fails the test when Istio refuses or warns about u.
func (ic *istioChecker) valid(u *unstructured.Unstructured) {
	ic.t.Helper()
	if err := ic.in.Encode(u.Object); err != nil {
		ic.t.Fatal(err)
	}
	if !ic.out.Scan() {
		ic.t.Fatalf("istiocheck stopped: %v", ic.out.Err())
	}
	var a struct{ Warnings, Error string }
	if err := json.Unmarshal(ic.out.Bytes(), &a); err != nil {
		ic.t.Fatal(err)
	}
	if a.Error != "" || a.Warnings != "" {
		b, _ := json.Marshal(u.Object["spec"])
		ic.t.Errorf("Istio refuses %s %s (error %q, warnings %q): %s", u.GetKind(), u.GetName(), a.Error, a.Warnings, b)
	}
}

// refuses says whether Istio refuses u.
func (ic *istioChecker) refuses(u *unstructured.Unstructured) string {
	ic.t.Helper()
	if err := ic.in.Encode(u.Object); err != nil {
		ic.t.Fatal(err)
	}
	if !ic.out.Scan() {
		ic.t.Fatalf("istiocheck stopped: %v", ic.out.Err())
	}
	var a struct{ Error string }
	if err := json.Unmarshal(ic.out.Bytes(), &a); err != nil {
		ic.t.Fatal(err)
	}
	return a.Error
}
