package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// Two controllers with --leader-elect: exactly one holds the Lease; when it
// stops, the other takes over.
func TestLeaderElectionWithALease(t *testing.T) {
	c := testenv.Get(t)
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	ns := c.Namespace(t)
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	start := func(name string) (*exec.Cmd, *bytes.Buffer) {
		var out bytes.Buffer
		cmd := exec.Command(bin, "--kubeconfig", c.Kubeconfig, "--leader-elect", "--leader-election-namespace", ns,
			"--instance-id", "lease-"+ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = append(os.Environ(), "POD_NAME="+name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, &out
	}
	holder := func(ctx context.Context) (string, error) {
		l, err := c.Client.CoordinationV1().Leases(ns).Get(ctx, "lease-"+ns+".sluice-controller.sluice.dev", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return leaseHolder(l), nil
	}
	first, _ := start("a")
	var leader string
	testenv.Eventually(t, 60*time.Second, "a leader holds the Lease", func(ctx context.Context) error {
		h, err := holder(ctx)
		if err != nil || h == "" {
			return fmt.Errorf("holder %q (%v)", h, err)
		}
		leader = h
		return nil
	})
	second, _ := start("b")
	time.Sleep(3 * time.Second) // the standby must not take the Lease while the leader renews it
	if h, err := holder(t.Context()); err != nil || h != leader {
		t.Fatalf("Lease moved to %q while the leader %q was running (%v)", h, leader, err)
	}
	_ = first.Process.Signal(syscall.SIGTERM)
	_ = first.Wait()
	testenv.Eventually(t, 30*time.Second, "the standby takes over", func(ctx context.Context) error {
		h, err := holder(ctx)
		if err != nil || h == "" || h == leader {
			return fmt.Errorf("holder %q (%v)", h, err)
		}
		return nil
	})
	_ = second
}

func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
