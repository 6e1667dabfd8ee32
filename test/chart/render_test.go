package chart_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// The chart's crds/ and files/role.yaml are copies that make generate
// writes from config/crd/bases and config/rbac/role.yaml: the same files,
// byte for byte, and no other.
func TestChartCopiesOfGeneratedFiles(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	yamls := func(dir string) []string {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = filepath.Base(f)
		}
		return files
	}
	bases, crds := yamls("config/crd/bases"), yamls("charts/sluice/crds")
	if len(bases) == 0 || !slices.Equal(bases, crds) {
		t.Fatalf("charts/sluice/crds holds %v, config/crd/bases %v: run make generate", crds, bases)
	}
	pairs := [][2]string{{"config/rbac/role.yaml", "charts/sluice/files/role.yaml"}}
	for _, f := range bases {
		pairs = append(pairs, [2]string{"config/crd/bases/" + f, "charts/sluice/crds/" + f})
	}
	for _, p := range pairs {
		src, err := os.ReadFile(filepath.Join(root, p[0]))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := os.ReadFile(filepath.Join(root, p[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, cp) {
			t.Errorf("%s differs from %s: run make generate", p[1], p[0])
		}
	}
}

func TestHelmLint(t *testing.T) {
	h := newHelm(t, "")
	h.must(time.Minute, "lint", "--strict", h.chart())
	h.must(time.Minute, "lint", "--strict", h.chart(),
		"--set", "metrics.serviceMonitor.enabled=true",
		"--set", "grafanaDashboard.enabled=true",
		"--set", "image.digest=sha256:"+strings.Repeat("ab", 32),
		"--set", "metricsServer=http://prometheus.monitoring:9090")
}

// With its defaults, released as "sluice" in sluice-system, the chart
// renders what kustomize builds from config/default: the same names, RBAC
// rules, replicas, flags, resources, probes and security contexts.
func TestChartDefaultsMatchKustomizeBase(t *testing.T) {
	h := newHelm(t, "")
	objs := h.render("sluice", "sluice-system")
	base := kustomizeBase(t, h.root)

	var got, want appsv1.Deployment
	find(t, objs, "Deployment", "sluice", &got)
	find(t, base, "Deployment", "sluice", &want)
	if *got.Spec.Replicas != *want.Spec.Replicas {
		t.Errorf("replicas = %d, kustomize %d", *got.Spec.Replicas, *want.Spec.Replicas)
	}
	gp, wp := got.Spec.Template.Spec, want.Spec.Template.Spec
	if gp.ServiceAccountName != wp.ServiceAccountName {
		t.Errorf("serviceAccountName = %q, kustomize %q", gp.ServiceAccountName, wp.ServiceAccountName)
	}
	if !equality.Semantic.DeepEqual(gp.SecurityContext, wp.SecurityContext) {
		t.Errorf("pod securityContext = %+v, kustomize %+v", gp.SecurityContext, wp.SecurityContext)
	}
	gc, wc := gp.Containers[0], wp.Containers[0]
	if len(gp.Containers) != 1 || gc.Name != wc.Name {
		t.Fatalf("containers = %d, first %q; kustomize: one, %q", len(gp.Containers), gc.Name, wc.Name)
	}
	repo := func(image string) string { return image[:strings.LastIndex(image, ":")] }
	if repo(gc.Image) != repo(wc.Image) || !strings.HasSuffix(gc.Image, ":0.1.0") {
		t.Errorf("image = %s, want kustomize's repository (%s) at the chart's appVersion", gc.Image, repo(wc.Image))
	}
	// The chart states one flag at the controller's own default, which
	// kustomize leaves out.
	explicitDefaults := []string{"--builtin-metrics=" + analysis.BuiltinAuto}
	args := slices.DeleteFunc(slices.Clone(gc.Args), func(a string) bool { return slices.Contains(explicitDefaults, a) })
	if !slices.Equal(args, wc.Args) {
		t.Errorf("args = %q, kustomize %q (plus %q)", gc.Args, wc.Args, explicitDefaults)
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"ports", gc.Ports, wc.Ports},
		{"liveness probe", gc.LivenessProbe, wc.LivenessProbe},
		{"readiness probe", gc.ReadinessProbe, wc.ReadinessProbe},
		{"resources", gc.Resources, wc.Resources},
		{"container securityContext", gc.SecurityContext, wc.SecurityContext},
	} {
		if !equality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %+v, kustomize %+v", c.what, c.got, c.want)
		}
	}

	// RBAC: the same rules under the same names, bound to the same account.
	var gcr, wcr rbacv1.ClusterRole
	find(t, objs, "ClusterRole", "sluice-manager", &gcr)
	find(t, base, "ClusterRole", "sluice-manager", &wcr)
	if len(gcr.Rules) == 0 || !equality.Semantic.DeepEqual(gcr.Rules, wcr.Rules) {
		t.Errorf("ClusterRole rules differ from config/rbac/role.yaml:\n%+v\n%+v", gcr.Rules, wcr.Rules)
	}
	var gr, wr rbacv1.Role
	find(t, objs, "Role", "sluice-leader-election", &gr)
	find(t, base, "Role", "sluice-leader-election", &wr)
	if !equality.Semantic.DeepEqual(gr.Rules, wr.Rules) {
		t.Errorf("leader-election Role rules = %+v, kustomize %+v", gr.Rules, wr.Rules)
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		var gb, wb rbacv1.ClusterRoleBinding // the fields compared are common to both kinds
		name := map[string]string{"ClusterRoleBinding": "sluice-manager", "RoleBinding": "sluice-leader-election"}[kind]
		find(t, objs, kind, name, &gb)
		find(t, base, kind, name, &wb)
		if !equality.Semantic.DeepEqual(gb.RoleRef, wb.RoleRef) || !equality.Semantic.DeepEqual(gb.Subjects, wb.Subjects) {
			t.Errorf("%s %s = %+v %+v, kustomize %+v %+v", kind, name, gb.RoleRef, gb.Subjects, wb.RoleRef, wb.Subjects)
		}
	}
	find(t, objs, "ServiceAccount", "sluice", nil)

	// Only in the chart: the PodDisruptionBudget and the metrics Service,
	// both picking the controller's pods; no ServiceMonitor by default.
	var pdb policyv1.PodDisruptionBudget
	find(t, objs, "PodDisruptionBudget", "sluice", &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 ||
		!equality.Semantic.DeepEqual(pdb.Spec.Selector, got.Spec.Selector) {
		t.Errorf("PodDisruptionBudget = %+v, want maxUnavailable 1 over the Deployment's selector", pdb.Spec)
	}
	var svc corev1.Service
	find(t, objs, "Service", "sluice-metrics", &svc)
	if !equality.Semantic.DeepEqual(svc.Spec.Selector, got.Spec.Selector.MatchLabels) ||
		len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("metrics Service spec = %+v", svc.Spec)
	}
	for _, o := range objs {
		if o.GetKind() == "ServiceMonitor" || o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("rendered by default: %s %s", o.GetKind(), o.GetName())
		}
	}
	if n := len(objs); n != 8 {
		t.Errorf("rendered %d objects, want 8: %s", n, kinds(objs))
	}
}

// Each value lands where it should.
func TestChartValues(t *testing.T) {
	h := newHelm(t, "")
	digest := "sha256:" + strings.Repeat("0f", 32)
	objs := h.render("canary-ops", "ops",
		"--set", "image.repository=registry.example/sluice",
		"--set", "image.tag=9.9.9",
		"--set", "image.digest="+digest,
		"--set", "metricsServer=http://prometheus.monitoring:9090",
		"--set", "builtinMetrics=istio",
		"--set", "logFormat=console",
		"--set", "replicaCount=3",
		"--set", "extraArgs={--workers=32,--zap-log-level=debug}",
		"--set", "watchNamespaces={shop,payments}",
		"--set", "nodeSelector.pool=system",
		"--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
		"--set", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=100",
		"--set", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname",
		"--set", "podAnnotations.team=platform",
		"--set", "serviceAccount.annotations.iam=role-a",
		"--set", "podDisruptionBudget.enabled=false",
		"--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.serviceMonitor.labels.release=prom",
		"--set", "metrics.serviceMonitor.interval=15s",
	)
	var d appsv1.Deployment
	find(t, objs, "Deployment", "canary-ops-sluice", &d)
	if d.Namespace != "ops" || *d.Spec.Replicas != 3 {
		t.Errorf("Deployment %s/%s replicas %d, want ops/canary-ops-sluice replicas 3", d.Namespace, d.Name, *d.Spec.Replicas)
	}
	p := d.Spec.Template.Spec
	c := p.Containers[0]
	if want := "registry.example/sluice@" + digest; c.Image != want {
		t.Errorf("image = %s, want %s", c.Image, want)
	}
	wantArgs := []string{"--leader-elect", "--leader-election-namespace=ops", "--zap-encoder=console",
		"--metrics-server=http://prometheus.monitoring:9090", "--builtin-metrics=istio", "--watch-namespaces=shop,payments", "--workers=32", "--zap-log-level=debug"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args = %q, want %q", c.Args, wantArgs)
	}
	if p.NodeSelector["pool"] != "system" || len(p.Tolerations) != 1 || p.Tolerations[0].Key != "dedicated" ||
		p.Affinity == nil || p.Affinity.PodAntiAffinity == nil ||
		p.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("scheduling: nodeSelector %v, tolerations %+v, affinity %+v", p.NodeSelector, p.Tolerations, p.Affinity)
	}
	if d.Spec.Template.Annotations["team"] != "platform" {
		t.Errorf("pod annotations = %v", d.Spec.Template.Annotations)
	}
	if p.ServiceAccountName != "canary-ops-sluice" {
		t.Errorf("serviceAccountName = %q", p.ServiceAccountName)
	}
	sa := find(t, objs, "ServiceAccount", "canary-ops-sluice", nil)
	if sa.GetAnnotations()["iam"] != "role-a" {
		t.Errorf("ServiceAccount annotations = %v", sa.GetAnnotations())
	}
	for _, o := range objs {
		if o.GetKind() == "PodDisruptionBudget" {
			t.Errorf("PodDisruptionBudget rendered though disabled")
		}
	}
	// The ServiceMonitor picks the metrics Service by its labels and
	// scrapes its port by name.
	sm := find(t, objs, "ServiceMonitor", "canary-ops-sluice", nil)
	var svc corev1.Service
	svcObj := find(t, objs, "Service", "canary-ops-sluice-metrics", &svc)
	if sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor labels = %v", sm.GetLabels())
	}
	match, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range match {
		if svcObj.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v; the metrics Service has labels %v", k, v, svcObj.GetLabels())
		}
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints = %v", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	if ep["port"] != svc.Spec.Ports[0].Name || ep["interval"] != "15s" || ep["path"] != "/metrics" || ep["honorLabels"] != true {
		t.Errorf("ServiceMonitor endpoint = %v, want port %q, interval 15s, path /metrics, honorLabels (the Canaries' namespace label)", ep, svc.Spec.Ports[0].Name)
	}
	ns, _, _ := unstructured.NestedSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	if len(ns) != 1 || ns[0] != "ops" {
		t.Errorf("ServiceMonitor namespaceSelector = %v", ns)
	}
}

// The Grafana dashboard ships as a ConfigMap for Grafana's sidecar only
// when asked: files/grafana-dashboard.json as it is, under the sidecar's
// label, in the release's namespace or the one given.
func TestChartGrafanaDashboard(t *testing.T) {
	h := newHelm(t, "")
	for _, o := range h.render("sluice", "sluice-system") {
		if o.GetKind() == "ConfigMap" {
			t.Errorf("rendered by default: ConfigMap %s", o.GetName())
		}
	}
	want, err := os.ReadFile(filepath.Join(h.root, "charts", "sluice", "files", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var board struct {
		UID string `json:"uid"`
	}
	if err := json.Unmarshal(want, &board); err != nil || board.UID != "sluice" {
		t.Fatalf("files/grafana-dashboard.json: uid %q, %v", board.UID, err)
	}

	var cm corev1.ConfigMap
	find(t, h.render("sluice", "sluice-system", "--set", "grafanaDashboard.enabled=true"), "ConfigMap", "sluice-grafana-dashboard", &cm)
	if cm.Namespace != "sluice-system" || cm.Labels["grafana_dashboard"] != "1" || cm.Labels["app.kubernetes.io/instance"] != "sluice" {
		t.Errorf("ConfigMap %s/%s labels %v; want the release's namespace, grafana_dashboard=1 and the chart's labels", cm.Namespace, cm.Name, cm.Labels)
	}
	if len(cm.Data) != 1 || cm.Data["sluice.json"] != strings.TrimRight(string(want), "\n") {
		t.Errorf("ConfigMap data: keys %v; want sluice.json holding files/grafana-dashboard.json as it is", slices.Sorted(maps.Keys(cm.Data)))
	}

	cm = corev1.ConfigMap{}
	find(t, h.render("canary-ops", "ops",
		"--set", "grafanaDashboard.enabled=true",
		"--set", "grafanaDashboard.namespace=monitoring",
		"--set", "grafanaDashboard.labels.grafana_dashboard=null",
		"--set", "grafanaDashboard.labels.dashboards=sluice",
		"--set", "grafanaDashboard.annotations.grafana_folder=Delivery",
	), "ConfigMap", "canary-ops-sluice-grafana-dashboard", &cm)
	if _, ok := cm.Labels["grafana_dashboard"]; cm.Namespace != "monitoring" || ok || cm.Labels["dashboards"] != "sluice" || cm.Annotations["grafana_folder"] != "Delivery" {
		t.Errorf("ConfigMap %s/%s labels %v annotations %v; want monitoring, the label dashboards=sluice instead of the default, the folder annotation",
			cm.Namespace, cm.Name, cm.Labels, cm.Annotations)
	}
}

// values.schema.json refuses values the controller would refuse at start
// (or that would not be flags at all), so helm fails before installing.
func TestChartRefusesBadValues(t *testing.T) {
	h := newHelm(t, "")
	for _, set := range []string{
		"logFormat=text",
		"builtinMetrics=prometheus",
		"image.digest=latest",
		"metricsServer=prometheus:9090",
		"extraArgs={workers=4}",
		"replicaCount=0",
		"podAnnotations.scrape=true", // a bool: the apiserver takes only strings
		"grafanaDashboard.namespace=Monitoring",
	} {
		if out, err := h.run(time.Minute, "template", "x", h.chart(), "--set", set); err == nil {
			t.Errorf("--set %s rendered:\n%s", set, out)
		} else if !strings.Contains(err.Error(), "schema") {
			t.Errorf("--set %s: %v, want a schema error", set, err)
		}
	}
}

// The schema's builtinMetrics values are the controller's: auto, app,
// envoy and each router with builtin queries of its own (what
// cmd/sluice's --builtin-metrics takes).
func TestChartSchemaBuiltinMetrics(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "charts", "sluice", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			BuiltinMetrics struct {
				Enum []string `json:"enum"`
			} `json:"builtinMetrics"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	want := []string{analysis.BuiltinAuto, analysis.BuiltinApp, analysis.BuiltinEnvoy}
	for _, r := range routers.All() {
		if r.BuiltinQueries != nil {
			want = append(want, r.Name)
		}
	}
	got := schema.Properties.BuiltinMetrics.Enum
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("values.schema.json builtinMetrics enum = %q, the controller takes %q", got, want)
	}
}
