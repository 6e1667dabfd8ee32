package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	start := func(name string) (*exec.Cmd, *syncBuffer) {
		out := &syncBuffer{}
		cmd := exec.Command(bin, "--kubeconfig", c.Kubeconfig, "--leader-elect", "--leader-election-namespace", ns,
			"--instance-id", "lease-"+ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(os.Environ(), "POD_NAME="+name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, out
	}
	lease := func(ctx context.Context) (*coordinationv1.Lease, error) {
		return c.Client.CoordinationV1().Leases(ns).Get(ctx, "lease-"+ns+".sluice-controller.sluice.dev", metav1.GetOptions{})
	}
	holder := func(ctx context.Context) (string, error) {
		l, err := lease(ctx)
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
	second, standby := start("b")
	// The standby must not take the Lease while the leader renews it:
	// sampled from the standby's first try (logged just before it) until
	// the leader has renewed the Lease twice since, whatever that takes.
	testenv.Eventually(t, 60*time.Second, "the standby tries to take the Lease", func(context.Context) error {
		if !strings.Contains(standby.String(), standbyTries) {
			return fmt.Errorf("no %q in its output yet", standbyTries)
		}
		return nil
	})
	var since *metav1.MicroTime
	renewals := 0
	testenv.Eventually(t, 60*time.Second, "the leader renews the Lease twice", func(ctx context.Context) error {
		l, err := lease(ctx)
		if err != nil {
			return err
		}
		if h := leaseHolder(l); h != leader {
			t.Fatalf("Lease moved to %q while the leader %q was running", h, leader)
		}
		switch at := l.Spec.RenewTime; {
		case at == nil:
			return errors.New("no renewTime")
		case since == nil:
			since = at
		case !at.Equal(since):
			since = at
			renewals++
		}
		if renewals < 2 {
			return fmt.Errorf("%d renewals since the standby's first try", renewals)
		}
		return nil
	})
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

// standbyTries is what a manager logs just before its first try to take
// the Lease (client-go's leader election).
const standbyTries = "Attempting to acquire leader lease"

// syncBuffer is a bytes.Buffer a process writes to while the test reads it.
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

func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
