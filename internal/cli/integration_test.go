package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// run runs kubectl-sluice in process and returns its output.
func run(kubeconfig string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	root := cli.NewRoot(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := root.Execute()
	return out.String() + errOut.String(), err
}

// The CLI's actions drive a real controller (bin/sluice, built here) on the
// local cluster.
func TestActionsDriveARealController(t *testing.T) {
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	ns := c.Namespace(t)
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("build controller: %v\n%s", err, out)
	}
	instance := "cli-" + ns
	ctrl := exec.Command(bin, "--kubeconfig", c.Kubeconfig, "--instance-id", instance,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	if err := ctrl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctrl.Process.Kill(); _ = ctrl.Wait() })

	labels := map[string]string{"app": "cli"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cli", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/cli:1"}}}}},
	}
	w := int32(30)
	can := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "cli", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "cli"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:   v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: &w}, {Pause: &v1alpha1.PauseStep{}}}},
		},
	}
	for _, o := range []client.Object{dep, can} {
		if err := cl.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // finalize while the controller still runs
		_ = cl.Delete(context.Background(), can)
		testenv.Eventually(t, 30*time.Second, "canary finalized", func(ctx context.Context) error {
			if err := cl.Get(ctx, client.ObjectKeyFromObject(can), &v1alpha1.Canary{}); err == nil {
				return errors.New("still there")
			}
			return nil
		})
	})
	phase := func(want v1alpha1.CanaryPhase) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, "phase "+string(want), func(ctx context.Context) error {
			var got v1alpha1.Canary
			if err := cl.Get(ctx, client.ObjectKeyFromObject(can), &got); err != nil {
				return err
			}
			if got.Status.Phase != want {
				return fmt.Errorf("phase %s (%s)", got.Status.Phase, got.Status.Message)
			}
			return nil
		})
	}
	phase(v1alpha1.PhaseInitialized)

	if out, err := run(c.Kubeconfig, "-n", ns, "promote", "cli"); err == nil || !strings.Contains(out+err.Error(), "is Initialized: no release is in progress") {
		t.Errorf("promote with no release: %q, %v; want a refusal", out, err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Template.Spec.Containers[0].Image = "example.com/cli:2"
	if err := cl.Patch(t.Context(), dep, patch); err != nil {
		t.Fatal(err)
	}
	phase(v1alpha1.PhaseWaitingPromotion)

	out, err := run(c.Kubeconfig, "-n", ns, "get", "cli")
	if err != nil || !strings.Contains(out, "WaitingPromotion") || !strings.Contains(out, " >  1  pause until promoted") ||
		!strings.Contains(out, "canary 30% set, 30% read back") {
		t.Errorf("get during the release:\n%s(%v)", out, err)
	}
	// get --watch follows from a watch; not a terminal here, so one line
	// per change.
	watchOut := &syncBuffer{}
	wctx, stopWatch := context.WithCancel(t.Context())
	watchDone := make(chan error, 1)
	go func() {
		root := cli.NewRoot(genericiooptions.IOStreams{Out: watchOut, ErrOut: watchOut})
		root.SetArgs([]string{"--kubeconfig", c.Kubeconfig, "-n", ns, "get", "cli", "--watch"})
		watchDone <- root.ExecuteContext(wctx)
	}()
	testenv.Eventually(t, 10*time.Second, "watch started", func(context.Context) error {
		if !strings.Contains(watchOut.String(), "WaitingPromotion") {
			return fmt.Errorf("output %q", watchOut.String())
		}
		return nil
	})

	if out, err := run(c.Kubeconfig, "-n", ns, "pause", "cli"); err != nil || !strings.Contains(out, "holds where it is") {
		t.Fatalf("pause: %q %v", out, err)
	}
	phase(v1alpha1.PhasePaused)
	changed := time.Now() // the status change was seen by polling the API (<= 100 ms late)
	testenv.Eventually(t, 5*time.Second, "watch shows Paused", func(context.Context) error {
		if !strings.Contains(watchOut.String(), "Paused ") {
			return fmt.Errorf("output %q", watchOut.String())
		}
		return nil
	})
	if lag := time.Since(changed); lag > time.Second {
		t.Errorf("get --watch showed the change %s after it happened, want within 1s", lag)
	}
	stopWatch()
	if err := <-watchDone; err != nil {
		t.Errorf("watch ended with %v", err)
	}
	if out, err := run(c.Kubeconfig, "-n", ns, "resume", "cli"); err != nil || !strings.Contains(out, "resumes") {
		t.Fatalf("resume: %q %v", out, err)
	}
	phase(v1alpha1.PhaseWaitingPromotion)
	if out, err := run(c.Kubeconfig, "-n", ns, "promote", "cli"); err != nil || !strings.Contains(out, "leaves step 1 now") {
		t.Fatalf("promote: %q %v", out, err)
	}
	phase(v1alpha1.PhaseSucceeded)

	out, err = run(c.Kubeconfig, "list", "-A")
	if err != nil || !strings.Contains(out, ns) || !strings.Contains(out, "Succeeded") {
		t.Errorf("list -A:\n%s(%v)", out, err)
	}
	if _, err := run(c.Kubeconfig, "get"); !errors.As(err, new(cli.UsageError)) {
		t.Errorf("get without a name: %v, want a usage error (exit 2)", err)
	}

	// Output for scripts: the object as the apiserver has it.
	out, err = run(c.Kubeconfig, "-n", ns, "get", "cli", "-o", "json")
	var got v1alpha1.Canary
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Kind != "Canary" ||
		got.Status.Phase != v1alpha1.PhaseSucceeded || got.Name != "cli" {
		t.Errorf("get -o json: %v\n%s", err, out)
	}
	out, err = run(c.Kubeconfig, "-n", ns, "list", "-o", "yaml")
	var list v1alpha1.CanaryList
	if err != nil || yaml.Unmarshal([]byte(out), &list) != nil || list.Kind != "CanaryList" ||
		len(list.Items) != 1 || list.Items[0].Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("list -o yaml: %v\n%s", err, out)
	}
	if _, err := run(c.Kubeconfig, "-n", ns, "get", "cli", "-o", "wide"); !errors.As(err, new(cli.UsageError)) {
		t.Errorf("get -o wide: %v, want a usage error", err)
	}

	// A third revision, aborted; history shows all three, and undo sets
	// the target back to the last good one, which the primary runs: nothing
	// to release, the Canary healthy again.
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(dep), dep); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(dep.DeepCopy())
	dep.Spec.Template.Spec.Containers[0].Image = "example.com/cli:3"
	if err := cl.Patch(t.Context(), dep, patch); err != nil {
		t.Fatal(err)
	}
	phase(v1alpha1.PhaseWaitingPromotion)
	if out, err := run(c.Kubeconfig, "-n", ns, "undo", "cli"); err == nil || !strings.Contains(err.Error(), "abort the release first") {
		t.Errorf("undo during a release: %q %v; want a refusal", out, err)
	}
	if out, err := run(c.Kubeconfig, "-n", ns, "abort", "cli"); err != nil {
		t.Fatalf("abort: %q %v", out, err)
	}
	phase(v1alpha1.PhaseFailed)
	var hist string
	testenv.Eventually(t, 30*time.Second, "history of three revisions", func(context.Context) error {
		var err error
		hist, err = run(c.Kubeconfig, "-n", ns, "history", "cli")
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(hist), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[1], "1 ") || !strings.HasPrefix(lines[2], "2* ") ||
			!strings.Contains(lines[2], "Succeeded") || !strings.Contains(lines[2], "example.com/cli:2") ||
			!strings.HasPrefix(lines[3], "3 ") || !strings.Contains(lines[3], "Failed") || !strings.Contains(lines[3], "Aborted") {
			return fmt.Errorf("history:\n%s", hist)
		}
		return nil
	})
	out, err = run(c.Kubeconfig, "-n", ns, "history", "cli", "-o", "json")
	var recs v1alpha1.CanaryRevisionList
	if err != nil || json.Unmarshal([]byte(out), &recs) != nil || len(recs.Items) != 3 || recs.Items[2].Status.Outcome != v1alpha1.OutcomeFailed {
		t.Errorf("history -o json: %v\n%s", err, out)
	}
	out, err = run(c.Kubeconfig, "-n", ns, "undo", "cli")
	if err != nil || !strings.Contains(out, "back to revision #2") || !strings.Contains(out, "nothing is released") {
		t.Fatalf("undo: %q %v", out, err)
	}
	phase(v1alpha1.PhaseSucceeded)
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(dep), dep); err != nil || dep.Spec.Template.Spec.Containers[0].Image != "example.com/cli:2" {
		t.Errorf("target after undo: %v %v", dep.Spec.Template.Spec.Containers[0].Image, err)
	}
	var after v1alpha1.Canary
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(can), &after); err != nil || after.Status.Reason != "RevertedToStable" {
		t.Errorf("after undo: reason %s (%v)", after.Status.Reason, err)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
