// Package testenv gives integration tests a real Kubernetes: the local
// control plane of hack/localcluster (kube-apiserver, controller-manager,
// scheduler, etcd and kwok fake nodes), started once per test process or
// reused when one is already running, plus per-test namespaces and a real
// Prometheus.
//
// The package keeps one process-wide handle to the shared cluster (a
// sync.Once): starting a control plane per test would cost seconds each.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a running local control plane.
type Cluster struct {
	// Root is the repository root.
	Root string
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// Config is a client config for the admin user.
	Config *rest.Config
	// Client is a typed clientset for the admin user.
	Client kubernetes.Interface
}

var (
	clusterOnce sync.Once
	shared      *Cluster
	sharedErr   error
)

// StartTimeout bounds how long a test waits for the cluster to start,
// including the one-time build of its binary when it is not built yet.
const StartTimeout = 25 * time.Minute

// Get returns the shared local cluster, starting it on first use. A cluster
// that cannot start fails the test with the reason and the log tail.
func Get(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local control plane (run without -short)")
	}
	clusterOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		t.Fatalf("local control plane unavailable: %v", sharedErr)
	}
	return shared
}

func start() (*Cluster, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "cluster.sh"), "up")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("hack/cluster.sh up: %w\n%s", err, out.String())
	}
	kubeconfig := filepath.Join(root, ".local", "kubeconfig")
	if dir := os.Getenv("SLUICE_LOCAL_DIR"); dir != "" {
		kubeconfig = filepath.Join(dir, "kubeconfig")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return &Cluster{Root: root, Kubeconfig: kubeconfig, Config: cfg, Client: cs}, nil
}

// RepoRoot finds the repository root: the folder whose go.mod declares the
// Sluice module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/sluice-dev/sluice\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repository root not found above the working directory")
		}
		dir = parent
	}
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for this test and deletes it when the test
// ends. Its name carries the test's name, so a leftover is easy to trace.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("%s-%s", base, hex.EncodeToString(suffix))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"sluice.dev/test": "true"}}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

// Eventually polls cond every interval until it returns nil or timeout
// passes, then fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%s: not true after %s: %v", what, timeout, err)
	}
}

// Poll runs cond every 100 ms, each call with a 10 s deadline, until it
// returns nil or timeout passes; then it returns the last error.
func Poll(timeout time.Duration, cond func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// NeverReadyAnnotation, on a pod template, makes the local cluster's fake
// nodes run the pods without ever marking them Ready (a crash-looping
// container), as a broken release's pods would be. hack/localcluster
// defines it.
const NeverReadyAnnotation = "localcluster.sluice.dev/never-ready"

// UnreadyPrimaryLabel on a pod template makes only Sluice's primary copy
// of it (pods carrying the sluice.dev/revision annotation) never Ready.
const UnreadyPrimaryLabel = "localcluster.sluice.dev/unready-primary"
