// Package walkthrough_test runs docs/walkthrough.md as a new user would:
// its shell blocks, in order, from the repository's root, the one that
// starts the controller ("# in a second terminal") in the background.
package walkthrough_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// blocks are the shell blocks of a Markdown page.
func blocks(page string) []string {
	var out []string
	var cur *strings.Builder
	for _, line := range strings.Split(page, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

func TestWalkthrough(t *testing.T) {
	c := testenv.Get(t)
	page, err := os.ReadFile(filepath.Join(c.Root, "docs", "walkthrough.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps := blocks(string(page))
	if len(steps) < 4 {
		t.Fatalf("docs/walkthrough.md has %d shell blocks, want the 4 steps", len(steps))
	}
	cl := c.SluiceClient(t)

	var logs bytes.Buffer
	bash := func(ctx context.Context, step string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", step)
		cmd.Dir = c.Root
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
		return cmd
	}
	for i, step := range steps {
		if strings.HasPrefix(strings.TrimSpace(step), "# in a second terminal") {
			// The controller: until the test ends, then its whole
			// process group (make and the controller it runs).
			cmd := bash(context.Background(), step)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
			t.Cleanup(func() {
				cleanup(t, cl) // while the controller runs: it finalizes the Canary
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				done := make(chan struct{})
				go func() { _ = cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
				if t.Failed() {
					t.Logf("controller (make run) output, tail:\n%s", tail(logs.String(), 40))
				}
			})
			continue
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		out, err := bash(ctx, step).CombinedOutput()
		cancel()
		t.Logf("step %d (%s):\n%s%s", i+1, time.Since(start).Round(100*time.Millisecond), step, out)
		if err != nil {
			t.Fatalf("step %d failed: %v", i+1, err)
		}
	}

	// Where the page says it ends: promoted, the primary on the new image.
	var cn v1alpha1.Canary
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: "podinfo", Name: "podinfo"}, &cn); err != nil {
		t.Fatal(err)
	}
	if cn.Status.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("the Canary ended %s (%s: %s), want Succeeded", cn.Status.Phase, cn.Status.Reason, cn.Status.Message)
	}
	var primary appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: "podinfo", Name: "podinfo-primary"}, &primary); err != nil {
		t.Fatal(err)
	}
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/stefanprodan/podinfo:6.7.1" {
		t.Errorf("the primary runs %s, want the new image", img)
	}
}

// cleanup deletes what the page applied while the controller still runs
// (it finalizes the Canary): the Canary first, then the namespace and the
// GatewayClass.
func cleanup(t *testing.T, cl client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cn := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "podinfo", Name: "podinfo"}}
	_ = cl.Delete(ctx, cn)
	for ctx.Err() == nil && cl.Get(ctx, client.ObjectKeyFromObject(cn), cn) == nil {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = cl.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "podinfo"}})
	_ = cl.Delete(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "example"}})
	if ctx.Err() != nil {
		t.Errorf("cleanup: canary podinfo/podinfo not finalized within a minute")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
