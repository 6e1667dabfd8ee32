// Package image_test proves Sluice's container image as far as this
// machine can: no container runtime runs here, so the test does what one
// would. It builds the image with `make image` (twice: the digest must not
// change), unpacks its root filesystem, and runs its entrypoint as the
// user the image declares, chrooted into that filesystem, which that user
// cannot write to, with the in-cluster configuration a kubelet would
// mount (a token from a TokenRequest for a ServiceAccount bound to the
// shipped RBAC, the cluster's CA, KUBERNETES_SERVICE_HOST/PORT). A release
// must promote under it.
package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/serviceaccount"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// ociIndex, ociManifest and ociConfig are the parts of the OCI image
// layout this test reads (the image specification's field names).
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	Manifests   []ociDescriptor   `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

type ociManifest struct {
	Config ociDescriptor   `json:"config"`
	Layers []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	Config struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		WorkingDir string            `json:"WorkingDir"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

func TestImageRunsAndPromotes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image")
	}
	if os.Geteuid() != 0 {
		t.Skip("running the image's entrypoint chrooted into its root filesystem as its user needs root (chroot and setuid)")
	}
	c := testenv.Get(t)
	commit := git(t, c.Root, "rev-parse", "HEAD")

	// Built twice from the same commit: the same digest.
	arch := runtime.GOARCH
	dirs := [2]string{t.TempDir(), t.TempDir()}
	var digests [2]string
	for i, d := range dirs {
		digests[i] = makeImage(t, c.Root, d, "linux/"+arch)
	}
	t.Logf("image digest %s (built twice)", digests[0])
	if digests[0] != digests[1] {
		t.Fatalf("two builds of commit %s: digests %s and %s", commit, digests[0], digests[1])
	}
	layout := filepath.Join(dirs[0], "oci")
	if _, err := os.Stat(filepath.Join(dirs[0], "sluice.spdx.json")); err != nil {
		t.Errorf("no SBOM beside the image: %v", err)
	}

	// The image: annotations, user, entrypoint, layers.
	idx := readJSON[ociIndex](t, layout, "")
	if len(idx.Manifests) != 1 || "sha256:"+strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:") != digests[0] {
		t.Fatalf("index.json names %+v, want the image index %s", idx.Manifests, digests[0])
	}
	images := readJSON[ociIndex](t, layout, idx.Manifests[0].Digest)
	if got := images.Annotations["org.opencontainers.image.revision"]; got != commit {
		t.Errorf("image index revision annotation %q, want %s", got, commit)
	}
	for _, k := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.created"} {
		if images.Annotations[k] == "" {
			t.Errorf("image index lacks the annotation %s", k)
		}
	}
	var m ociManifest
	for _, d := range images.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			m = readJSON[ociManifest](t, layout, d.Digest)
		}
	}
	if m.Config.Digest == "" {
		t.Fatalf("no linux/%s image in %s", arch, digests[0])
	}
	cfg := readJSON[ociConfig](t, layout, m.Config.Digest)
	uid, gid := userOf(t, cfg.Config.User)
	if uid == 0 {
		t.Errorf("the image runs as %q: want a nonroot user", cfg.Config.User)
	}
	if cfg.Config.Labels["org.opencontainers.image.revision"] != commit {
		t.Errorf("image config labels %v: want revision %s", cfg.Config.Labels, commit)
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	size := unpack(t, layout, m.Layers, rootfs)
	t.Logf("linux/%s: %d layers, %.1f MiB compressed; runs as %s; entrypoint %v", arch, len(m.Layers), float64(size)/(1<<20), cfg.Config.User, cfg.Config.Entrypoint)
	checkRootfs(t, rootfs, uid)

	// --version, from the image, names the commit.
	out, err := entrypoint(rootfs, cfg, uid, gid, nil, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), commit) {
		t.Fatalf("%v --version: %v: %s (want commit %s)", cfg.Config.Entrypoint, err, out, commit)
	}

	// In-cluster: a ServiceAccount bound to the shipped RBAC, its token
	// and the CA where a kubelet mounts them.
	ctx := t.Context()
	cl := c.SluiceClient(t)
	ns := c.Namespace(t)
	sa := serviceAccount(t, c, cl, ns)
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request for %s/%s: %v", ns, sa, err)
	}
	ca := c.Config.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(c.Config.CAFile); err != nil {
			t.Fatalf("cluster CA: %v", err)
		}
	}
	secrets := filepath.Join(rootfs, "var/run/secrets/kubernetes.io/serviceaccount")
	if err := os.MkdirAll(secrets, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": ca, "namespace": []byte(ns)} {
		if err := os.WriteFile(filepath.Join(secrets, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	api, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	probes := freePort(t)
	instance := "image-" + ns
	env := []string{"KUBERNETES_SERVICE_HOST=" + api.Hostname(), "KUBERNETES_SERVICE_PORT=" + api.Port()}
	var logs bytes.Buffer
	cmd := entrypoint(rootfs, cfg, uid, gid, env,
		"--leader-elect", "--leader-election-namespace="+ns, "--instance-id="+instance,
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(probes))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cfg.Config.Entrypoint, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the controller stopped with %v on SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the controller did not stop within 30s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("controller log:\n%s", tail(logs.String(), 60))
		}
	})
	testenv.Eventually(t, 60*time.Second, "the image's controller ready", func(ctx context.Context) error {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %w (%s)", err, tail(logs.String(), 20))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(probes)+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d", resp.StatusCode)
		}
		return nil
	})

	// A release under it, to promotion.
	target := deployment(ns, "shop")
	canary := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"},
			Service:   v1alpha1.ServiceSpec{Port: 80, TargetPort: "8080"},
			Router:    v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{{Name: "public"}}}},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{
				{SetWeight: ptr.To(int32(50))}, {Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: 2 * time.Second}}},
			}},
		},
	}
	for _, o := range []client.Object{target, canary} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	t.Cleanup(func() {
		// The controller finalizes its Canary before it stops.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cl.Delete(ctx, canary)
		for ctx.Err() == nil && cl.Get(ctx, client.ObjectKeyFromObject(canary), &v1alpha1.Canary{}) == nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	waitPhase(t, cl, canary, v1alpha1.PhaseInitialized)
	patch := client.MergeFrom(target.DeepCopy())
	target.Spec.Template.Spec.Containers[0].Image = "example.org/shop:2"
	if err := cl.Patch(ctx, target, patch); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, canary, v1alpha1.PhaseSucceeded)
	var primary appsv1.Deployment
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-primary"}, &primary); err != nil {
		t.Fatal(err)
	}
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "example.org/shop:2" {
		t.Errorf("after promotion the primary runs %s, want example.org/shop:2", img)
	}
	t.Logf("release promoted by the image's controller, running as %s under ServiceAccount %s/%s", cfg.Config.User, ns, sa)
}

// makeImage runs `make image` for one platform into dir and returns the
// digest it prints.
func makeImage(t *testing.T, root, dir, platform string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "image", "PLATFORMS="+platform, "IMAGE_OUT="+dir)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("make image: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("make image: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "sha256:") {
		t.Fatalf("make image printed %q: want the digest last", out)
	}
	return lines[len(lines)-1]
}

// readJSON reads index.json (digest "") or a blob of the layout.
func readJSON[T any](t *testing.T, layout, digest string) T {
	t.Helper()
	path := filepath.Join(layout, "index.json")
	if digest != "" {
		path = filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	}
	var v T
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return v
}

func userOf(t *testing.T, user string) (uint32, uint32) {
	t.Helper()
	u, g, _ := strings.Cut(user, ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("image user %q: want numeric uid:gid (a runtime cannot check runAsNonRoot on a name)", user)
	}
	return uint32(uid), uint32(gid)
}

// unpack extracts the layers, in order, into dir, as a runtime would
// (owners and modes as the tar headers say), and returns their size.
func unpack(t *testing.T, layout string, layers []ociDescriptor, dir string) int64 {
	t.Helper()
	var size int64
	for _, l := range layers {
		size += l.Size
		f, err := os.Open(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			path := filepath.Join(dir, filepath.Clean("/"+h.Name))
			switch h.Typeflag {
			case tar.TypeDir:
				err = os.MkdirAll(path, fs.FileMode(h.Mode)&fs.ModePerm)
			case tar.TypeReg:
				if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
					var out *os.File
					if out, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(h.Mode)&fs.ModePerm); err == nil {
						_, err = io.Copy(out, tr)
						if cerr := out.Close(); err == nil {
							err = cerr
						}
					}
				}
			default:
				t.Fatalf("layer %s: %s has type %c, which this image should not hold", l.Digest, h.Name, h.Typeflag)
			}
			if err == nil {
				err = os.Chmod(path, fs.FileMode(h.Mode)&fs.ModePerm)
			}
			if err == nil {
				err = os.Lchown(path, h.Uid, h.Gid)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	return size
}

// checkRootfs: nothing but the binary, the CA certificates, passwd and
// group (no shell), and nothing the image's user may write to.
func checkRootfs(t *testing.T, rootfs string, uid uint32) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == rootfs {
			return err
		}
		rel, _ := filepath.Rel(rootfs, path)
		paths = append(paths, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid == uid || info.Mode().Perm()&0o002 != 0 {
			t.Errorf("%s (%v, owner %d) is writable by the image's user", rel, info.Mode(), st.Uid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "home", "home/nonroot", "sluice", "tmp"}
	if !slices.Equal(paths, want) {
		t.Errorf("the image holds %v, want only %v", paths, want)
	}
}

// entrypoint is the image's entrypoint with args, run as uid:gid chrooted
// into rootfs with the image's working directory and environment.
func entrypoint(rootfs string, cfg ociConfig, uid, gid uint32, env []string, args ...string) *exec.Cmd {
	argv := append(slices.Clone(cfg.Config.Entrypoint), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = cfg.Config.WorkingDir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = append(slices.Clone(cfg.Config.Env), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return cmd
}

// serviceAccount makes a ServiceAccount bound to the shipped RBAC
// (config/rbac: the ClusterRole, under a name of this test's, and the
// leader-election Role in the namespace) and returns its name.
func serviceAccount(t *testing.T, c *testenv.Cluster, cl client.Client, ns string) string {
	t.Helper()
	ctx := t.Context()
	const name = "sluice"
	role, err := serviceaccount.ShippedRole(c.Root)
	if err != nil {
		t.Fatal(err)
	}
	crName := "sluice-image-" + ns
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cl.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: crName}})
		_ = cl.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: crName}})
	})
	if err := serviceaccount.Bind(ctx, c.Client, ns, name, crName, role.Rules); err != nil {
		t.Fatal(err)
	}
	var leader rbacv1.Role
	readYAML(t, filepath.Join(c.Root, "config", "rbac", "leader_election.yaml"), &leader, 0)
	leader.ObjectMeta = metav1.ObjectMeta{Name: "sluice-leader-election", Namespace: ns}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: leader.Name, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: leader.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}}
	for _, o := range []client.Object{&leader, binding} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	return name
}

// readYAML reads the doc-th document of a YAML file into v, strictly.
func readYAML(t *testing.T, path string, v any, doc int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(raw), "\n---\n")
	if err := yaml.UnmarshalStrict([]byte(docs[doc]), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func deployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.org/shop:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

func waitPhase(t *testing.T, cl client.Client, cn *v1alpha1.Canary, phase v1alpha1.CanaryPhase) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "canary "+string(phase), func(ctx context.Context) error {
		var got v1alpha1.Canary
		if err := cl.Get(ctx, client.ObjectKeyFromObject(cn), &got); err != nil {
			return err
		}
		if got.Status.Phase != phase {
			return fmt.Errorf("phase %s (%s: %s)", got.Status.Phase, got.Status.Reason, got.Status.Message)
		}
		return nil
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
