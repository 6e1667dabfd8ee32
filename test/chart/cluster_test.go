package chart_test

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	crdbases "github.com/sluice-dev/sluice/config/crd/bases"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// kustomizeBase builds config/default as kubectl apply -k would.
func kustomizeBase(t testing.TB, root string) []unstructured.Unstructured {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	b, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// dryRunApply sends each object to the apiserver as a server-side apply
// with dryRun=All: admission, defaulting and schema validation run, nothing
// is stored.
func dryRunApply(t *testing.T, cl client.Client, objs []unstructured.Unstructured) {
	t.Helper()
	for i := range objs {
		o := &objs[i]
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		err := cl.Patch(ctx, o, client.Apply, client.DryRunAll, client.FieldOwner("sluice-chart-test"), client.ForceOwnership) //nolint:staticcheck // unstructured objects
		cancel()
		if err != nil {
			t.Errorf("dry-run apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

// What helm template renders (CRDs included) and what kustomize builds
// from config/default are accepted by the apiserver, by a server-side dry
// run: the chart with its defaults and with every value set (but the
// ServiceMonitor, whose CRD the local control plane does not have), the
// kustomize base with its namespaced objects moved to the test's
// namespace.
func TestChartServerSideDryRun(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	h := newHelm(t, c.Kubeconfig)
	cl, err := client.New(c.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defaults := h.render("sluice-dry-run", ns, "--include-crds")
	var crds int
	for _, o := range defaults {
		if o.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	want, err := fs.Glob(crdbases.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if crds != len(want) {
		t.Fatalf("helm template --include-crds rendered %d CRDs, want %d (config/crd/bases): %s", crds, len(want), kinds(defaults))
	}
	dryRunApply(t, cl, defaults)
	dryRunApply(t, cl, h.render("sluice-dry-run", ns,
		"--set", "image.digest=sha256:"+strings.Repeat("ab", 32),
		"--set", "metricsServer=http://prometheus.monitoring:9090",
		"--set", "builtinMetrics=traefik",
		"--set", "logFormat=console",
		"--set", "extraArgs={--workers=8}",
		"--set", "nodeSelector.pool=system",
		"--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
		"--set", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=100",
		"--set", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname",
		"--set", "podAnnotations.team=platform",
		"--set", "imagePullSecrets[0].name=registry",
		"--set-string", "metrics.service.annotations.scrape=true",
		"--set", "grafanaDashboard.enabled=true",
	))

	base := kustomizeBase(t, h.root)
	for i := range base {
		if base[i].GetNamespace() == "sluice-system" {
			base[i].SetNamespace(ns)
		}
	}
	dryRunApply(t, cl, base)
}

// crdState is what must not change about Sluice's CRDs on the shared
// cluster while a release comes and goes.
type crdState struct {
	uid      types.UID
	managers []string
}

func sluiceCRDs(t *testing.T, cl client.Client) map[string]crdState {
	t.Helper()
	out := map[string]crdState{}
	for _, name := range []string{"canaries.sluice.dev", "canaryrevisions.sluice.dev", "metrictemplates.sluice.dev"} {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := cl.Get(t.Context(), client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatalf("CRD %s: %v", name, err)
		}
		var managers []string
		for _, m := range crd.ManagedFields {
			managers = append(managers, m.Manager)
		}
		out[name] = crdState{uid: crd.UID, managers: managers}
	}
	return out
}

// The chart installed, upgraded and uninstalled as a release of its own on
// the shared local control plane: what the cluster holds after each step.
// Its kwok nodes run the controller's pods without pulling the image
// (nothing starts), so the Deployment is checked as stored and rolled out,
// not as a working controller.
//
// Sluice's CRDs are already there (other tests install them and use them
// meanwhile). helm install runs with --server-side=false: Helm v4 then
// creates the chart's crds/ and, finding them present, skips them, as
// Helm 3 always did; with server-side apply (v4's default) it would apply
// them and become a second manager of every field of the shared CRDs.
func TestChartInstallUpgradeUninstall(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	h := newHelm(t, c.Kubeconfig)
	scheme, err := newScheme()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	release := "sluice-" + ns[len(ns)-6:]
	name := release // the release name holds the chart's name, so it is the full name
	t.Cleanup(func() {
		// After a failure midway: the cluster-scoped objects outlive the
		// namespace, so uninstall; "not found" once uninstalled.
		if _, err := h.run(2*time.Minute, "uninstall", release, "--namespace", ns, "--wait"); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("cleanup: %v", err)
		}
	})
	before := sluiceCRDs(t, cl)

	start := time.Now()
	h.must(3*time.Minute, "install", release, h.chart(), "--namespace", ns,
		"--server-side=false", "--wait", "--timeout", "2m",
		"--set", "metricsServer=http://prometheus.monitoring:9090")
	t.Logf("installed and rolled out in %s", time.Since(start).Round(10*time.Millisecond))

	d := getDeployment(t, c.Client, ns, name)
	if *d.Spec.Replicas != 2 || d.Status.AvailableReplicas != 2 {
		t.Errorf("Deployment replicas %d, available %d; want 2 and 2", *d.Spec.Replicas, d.Status.AvailableReplicas)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--leader-elect", "--leader-election-namespace=" + ns, "--zap-encoder=json", "--metrics-server=http://prometheus.monitoring:9090"} {
		if !slices.Contains(args, want) {
			t.Errorf("Deployment args %q lack %s", args, want)
		}
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/sluice-dev/sluice:0.1.0" {
		t.Errorf("image = %s", img)
	}
	holdsRelease(t, h, cl, release, ns, releaseObjects(ns, name))
	var cr, wantRole rbacv1.ClusterRole
	if err := cl.Get(t.Context(), client.ObjectKey{Name: name + "-manager"}, &cr); err != nil {
		t.Fatal(err)
	}
	find(t, decodeFile(t, h.root, "config/rbac/role.yaml"), "ClusterRole", "", &wantRole)
	if len(cr.Rules) == 0 || !equality.Semantic.DeepEqual(cr.Rules, wantRole.Rules) {
		t.Errorf("installed ClusterRole rules differ from config/rbac/role.yaml")
	}

	// An upgrade with changed values changes the Deployment.
	gen := d.Generation
	h.must(3*time.Minute, "upgrade", release, h.chart(), "--namespace", ns, "--reuse-values",
		"--wait", "--timeout", "2m",
		"--set", "logFormat=console", "--set", "image.tag=0.1.1", "--set", "replicaCount=3")
	d = getDeployment(t, c.Client, ns, name)
	args = d.Spec.Template.Spec.Containers[0].Args
	if d.Generation == gen || *d.Spec.Replicas != 3 || !slices.Contains(args, "--zap-encoder=console") ||
		!slices.Contains(args, "--metrics-server=http://prometheus.monitoring:9090") ||
		d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/sluice-dev/sluice:0.1.1" {
		t.Errorf("after upgrade: generation %d (was %d), replicas %d, image %s, args %q",
			d.Generation, gen, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image, args)
	}
	if d.Status.UpdatedReplicas != 3 || d.Status.AvailableReplicas != 3 {
		t.Errorf("after upgrade: updated %d, available %d; want 3 and 3", d.Status.UpdatedReplicas, d.Status.AvailableReplicas)
	}
	holdsRelease(t, h, cl, release, ns, releaseObjects(ns, name))
	if out := h.must(time.Minute, "history", release, "--namespace", ns); strings.Count(out, "\n") != 3 {
		t.Errorf("helm history, want a header and two revisions:\n%s", out)
	}

	// Uninstall removes every object of the release and keeps the CRDs.
	h.must(3*time.Minute, "uninstall", release, "--namespace", ns, "--wait", "--timeout", "2m")
	for _, o := range releaseObjects(ns, name) {
		err := cl.Get(t.Context(), client.ObjectKeyFromObject(o), o)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after uninstall: %v, want not found", o, o.GetName(), err)
		}
	}
	after := sluiceCRDs(t, cl)
	for crd, b := range before {
		a := after[crd]
		if a.uid != b.uid {
			t.Errorf("CRD %s was replaced (uid %s, was %s)", crd, a.uid, b.uid)
		}
		for _, m := range a.managers {
			if strings.Contains(m, "helm") && !slices.Contains(b.managers, m) {
				t.Errorf("CRD %s gained field manager %s (%v)", crd, m, a.managers)
			}
		}
	}
}

// holdsRelease checks that the release's manifest (helm get manifest: what
// helm applied) holds the objects listed, and no CRD (helm uninstall
// deletes what the manifest holds), and that the cluster holds each object
// with every field as rendered, the apiserver's defaults aside.
func holdsRelease(t *testing.T, h *helmCLI, cl client.Client, release, ns string, objects []client.Object) {
	t.Helper()
	manifest, err := decodeAll([]byte(h.must(time.Minute, "get", "manifest", release, "--namespace", ns)))
	if err != nil {
		t.Fatalf("helm get manifest: %v", err)
	}
	var got, want []string
	for _, o := range manifest {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	for _, o := range objects {
		gvk, err := apiutil.GVKForObject(o, cl.Scheme())
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, gvk.Kind+"/"+o.GetName())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the release's manifest holds %v, want %v", got, want)
	}
	for _, o := range manifest {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := cl.Get(t.Context(), client.ObjectKeyFromObject(&o), live); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
			continue
		}
		if diff := lacks(o.Object, live.Object, ""); diff != "" {
			t.Errorf("%s %s in the cluster: %s", o.GetKind(), o.GetName(), diff)
		}
	}
}

// lacks returns where got lacks a value of want ("" when got holds all of
// want): maps may hold more keys, lists must be as long, numbers compare
// by value.
func lacks(want, got any, path string) string {
	switch w := want.(type) {
	case nil:
		return ""
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s = %v, want an object", path, got)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if d := lacks(w[k], g[k], path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s = %v, want %v", path, got, want)
		}
		for i := range w {
			if d := lacks(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if wn, ok := number(want); ok {
		if gn, ok := number(got); ok && gn == wn {
			return ""
		}
	} else if want == got {
		return ""
	}
	return fmt.Sprintf("%s = %v, want %v", path, got, want)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// releaseObjects are the objects a release named name (the chart's full
// name) holds, empty, with their keys.
func releaseObjects(ns, name string) []client.Object {
	meta := func(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta(ns, name)},
		&rbacv1.ClusterRole{ObjectMeta: meta("", name+"-manager")},
		&rbacv1.ClusterRoleBinding{ObjectMeta: meta("", name+"-manager")},
		&rbacv1.Role{ObjectMeta: meta(ns, name+"-leader-election")},
		&rbacv1.RoleBinding{ObjectMeta: meta(ns, name+"-leader-election")},
		&appsv1.Deployment{ObjectMeta: meta(ns, name)},
		&policyv1.PodDisruptionBudget{ObjectMeta: meta(ns, name)},
		&corev1.Service{ObjectMeta: meta(ns, name+"-metrics")},
	}
}

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, apiextensionsv1.AddToScheme(s)
}

func getDeployment(t *testing.T, cs kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func TestLacks(t *testing.T) {
	live := map[string]any{"spec": map[string]any{"replicas": int64(2), "ports": []any{map[string]any{"port": int64(8080), "protocol": "TCP"}}}}
	for _, c := range []struct {
		want map[string]any
		diff string
	}{
		{map[string]any{"spec": map[string]any{"replicas": float64(2)}}, ""},
		{map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": float64(8080)}}}}, ""},
		{map[string]any{"spec": map[string]any{"replicas": float64(3)}}, ".spec.replicas = 2, want 3"},
		{map[string]any{"spec": map[string]any{"ports": []any{}}}, ".spec.ports = [map[port:8080 protocol:TCP]], want []"},
		{map[string]any{"spec": map[string]any{"paused": true}}, ".spec.paused = <nil>, want true"},
	} {
		if got := lacks(c.want, live, ""); got != c.diff {
			t.Errorf("lacks(%v) = %q, want %q", c.want, got, c.diff)
		}
	}
}
