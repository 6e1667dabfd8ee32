package workload_test

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/workload"
)

func p[T any](v T) *T { return &v }

// ---------------------------------------------------------------- ConfigRefs

func cmKeyRef(name string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "k"}}
}

func secretKeyRef(name string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "k"}}
}

func TestConfigRefs(t *testing.T) {
	tests := []struct {
		name string
		spec corev1.PodSpec
		want []string
	}{
		{"nothing referenced", corev1.PodSpec{
			Volumes:    []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		}, nil},
		{"configMap volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-vol"}},
		}}}}, []string{"configmap/cm-vol"}},
		{"secret volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: "sec-vol"},
		}}}}, []string{"secret/sec-vol"}},
		{"projected volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-proj"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec-proj"}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{}},
			}},
		}}}}, []string{"configmap/cm-proj", "secret/sec-proj"}},
		{"envFrom in a container", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-envfrom"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec-envfrom"}}},
		}}}}, []string{"configmap/cm-envfrom", "secret/sec-envfrom"}},
		{"envFrom in an initContainer", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-init"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec-init"}}},
		}}}}, []string{"configmap/cm-init", "secret/sec-init"}},
		{"env valueFrom in a container", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: cmKeyRef("cm-env")},
			{Name: "B", ValueFrom: secretKeyRef("sec-env")},
		}}}}, []string{"configmap/cm-env", "secret/sec-env"}},
		{"env valueFrom in an initContainer", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: cmKeyRef("cm-init-env")},
			{Name: "B", ValueFrom: secretKeyRef("sec-init-env")},
		}}}}, []string{"configmap/cm-init-env", "secret/sec-init-env"}},
		{"configmap and secret of the same name are distinct", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: cmKeyRef("shared")},
			{Name: "B", ValueFrom: secretKeyRef("shared")},
		}}}}, []string{"configmap/shared", "secret/shared"}},
		{"everything, sorted and de-duplicated", corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "z", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "zz"}}},
				{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "b-config"}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "b-config"}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "zz"}}},
				}}}},
			},
			InitContainers: []corev1.Container{{Name: "init",
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a-config"}}}},
				Env:     []corev1.EnvVar{{Name: "T", ValueFrom: secretKeyRef("token")}},
			}},
			Containers: []corev1.Container{
				{Name: "app",
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a-config"}}}},
					Env:     []corev1.EnvVar{{Name: "T", ValueFrom: secretKeyRef("token")}, {Name: "C", ValueFrom: cmKeyRef("b-config")}},
				},
				{Name: "sidecar", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a-secret"}}}}},
			},
		}, []string{"configmap/a-config", "configmap/b-config", "secret/a-secret", "secret/token", "secret/zz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := workload.ConfigRefs(&corev1.PodTemplateSpec{Spec: tt.spec})
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ConfigRefs = %q, want %q", got, tt.want)
			}
		})
	}
}

// ------------------------------------------------------------------ Revision

func template() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}},
			Containers: []corev1.Container{{
				Name: "app", Image: "web:1.0",
				Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: secretKeyRef("web-token")}},
			}},
		},
	}
}

func TestRevision(t *testing.T) {
	hashes := map[string]string{"configmap/web-config": "aaaa", "secret/web-token": "bbbb"}
	base := workload.Revision(template(), hashes)
	if !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(base) {
		t.Fatalf("Revision = %q, want 10 hex digits", base)
	}

	withHashes := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range hashes {
			out[k] = v
		}
		for k, v := range m {
			if v == "" {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name    string
		mutate  func(*corev1.PodTemplateSpec)
		hashes  map[string]string
		changed bool
	}{
		{"same template and hashes", nil, hashes, false},
		{"equal copy of the hashes", nil, withHashes(nil), false},
		{"image changes", func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Image = "web:1.1" }, hashes, true},
		{"pod label changes", func(t *corev1.PodTemplateSpec) { t.Labels["tier"] = "front" }, hashes, true},
		{"pod annotation changes", func(t *corev1.PodTemplateSpec) { t.Annotations = map[string]string{"x": "y"} }, hashes, true},
		{"referenced configmap changes", nil, withHashes(map[string]string{"configmap/web-config": "cccc"}), true},
		{"referenced secret changes", nil, withHashes(map[string]string{"secret/web-token": "dddd"}), true},
		{"referenced configmap disappears", nil, withHashes(map[string]string{"configmap/web-config": ""}), true},
		{"unreferenced configmap added", nil, withHashes(map[string]string{"configmap/other": "eeee"}), false},
		{"unreferenced secret changes", nil, withHashes(map[string]string{"secret/other": "ffff"}), false},
		// A secret of the referenced configmap's name is a different object.
		{"secret named like the referenced configmap", nil, withHashes(map[string]string{"secret/web-config": "1111"}), false},
		{"new reference to a known configmap", func(t *corev1.PodTemplateSpec) {
			t.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "other"}}}}
		}, withHashes(map[string]string{"configmap/other": "eeee"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := template()
			if tt.mutate != nil {
				tt.mutate(tmpl)
			}
			got := workload.Revision(tmpl, tt.hashes)
			if changed := got != base; changed != tt.changed {
				t.Fatalf("Revision = %s, base %s: changed = %v, want %v", got, base, changed, tt.changed)
			}
		})
	}
}

// TestRevisionFollowsNewReference: once the template references a
// configmap, that configmap's data changes the revision.
func TestRevisionFollowsNewReference(t *testing.T) {
	tmpl := template()
	tmpl.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "other"}}}}
	a := workload.Revision(tmpl, map[string]string{"configmap/other": "1"})
	b := workload.Revision(tmpl, map[string]string{"configmap/other": "2"})
	if a == b {
		t.Fatalf("Revision did not change with the newly referenced configmap's hash: %s", a)
	}
}

// ------------------------------------------------------------------ DataHash

func TestDataHash(t *testing.T) {
	data := func(kv ...string) map[string][]byte {
		m := map[string][]byte{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = []byte(kv[i+1])
		}
		return m
	}

	t.Run("format", func(t *testing.T) {
		if h := workload.DataHash(data("a", "b")); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(h) {
			t.Fatalf("DataHash = %q, want 16 hex digits", h)
		}
	})
	t.Run("order-independent", func(t *testing.T) {
		keys := []string{"z", "alpha", "m", "beta", "0", "key.with.dots"}
		fwd := map[string][]byte{}
		for _, k := range keys {
			fwd[k] = []byte("v-" + k)
		}
		rev := map[string][]byte{}
		for i := len(keys) - 1; i >= 0; i-- {
			rev[keys[i]] = []byte("v-" + keys[i])
		}
		want := workload.DataHash(fwd)
		if got := workload.DataHash(rev); got != want {
			t.Fatalf("insertion order changed the hash: %s vs %s", got, want)
		}
		// Map iteration order is randomised per range; hash many times.
		for i := 0; i < 100; i++ {
			if got := workload.DataHash(fwd); got != want {
				t.Fatalf("hash %d differs: %s vs %s", i, got, want)
			}
		}
	})
	t.Run("nil and empty are the same", func(t *testing.T) {
		if workload.DataHash(nil) != workload.DataHash(map[string][]byte{}) {
			t.Fatal("nil and empty data hash differently")
		}
	})
	t.Run("distinct data, distinct hashes", func(t *testing.T) {
		cases := []map[string][]byte{
			nil,
			data("", ""),
			data("a", ""),
			data("a", "b"),
			data("a", "c"),
			data("b", "b"),
			data("ab", "c"),
			data("a", "bc"),
			data("abc", ""),
			data("a", "b", "c", "d"),
			data("a", "bc", "d", ""),
			data("a", "b1:c=1:d"),
			data("a", "1:b=1:c"),
			data("a", "", "b", ""),
			data("a", "1:b=0:"),
			data("a=1", "b"),
			data("a", "1=b"),
		}
		seen := map[string]int{}
		for i, d := range cases {
			h := workload.DataHash(d)
			if j, ok := seen[h]; ok {
				t.Errorf("cases %d %q and %d %q hash the same: %s", j, cases[j], i, d, h)
			}
			seen[h] = i
		}
	})
	t.Run("binary values", func(t *testing.T) {
		a := workload.DataHash(map[string][]byte{"k": {0, 1, 2}})
		b := workload.DataHash(map[string][]byte{"k": {0, 1, 3}})
		if a == b {
			t.Fatal("different binary values hash the same")
		}
	})
}

// ----------------------------------------------------------- PrimarySelector

func deployment(sel *metav1.LabelSelector) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       appsv1.DeploymentSpec{Selector: sel},
	}
}

func TestPrimarySelector(t *testing.T) {
	v55 := strings.Repeat("a", 55)
	tests := []struct {
		name  string
		match map[string]string
		want  map[string]string
	}{
		{"one label", map[string]string{"app": "web"}, map[string]string{"app": "web-primary"}},
		{"several labels", map[string]string{"app": "web", "tier": "front", "team": "shop.v2"},
			map[string]string{"app": "web-primary", "tier": "front-primary", "team": "shop.v2-primary"}},
		{"55 characters still fit", map[string]string{"app": v55}, map[string]string{"app": v55 + "-primary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := workload.PrimarySelector(deployment(&metav1.LabelSelector{MatchLabels: tt.match}))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("PrimarySelector = %v, want %v", got, tt.want)
			}
		})
	}
}

func primaryValue(t *testing.T, v string) string {
	t.Helper()
	got, err := workload.PrimarySelector(deployment(&metav1.LabelSelector{MatchLabels: map[string]string{"app": v}}))
	if err != nil {
		t.Fatal(err)
	}
	return got["app"]
}

func TestPrimarySelectorLongValues(t *testing.T) {
	long := func(n int, last byte) string { return strings.Repeat("x", n-1) + string(last) }
	inputs := []string{
		long(56, 'a'), long(56, 'b'), long(57, 'a'), long(60, 'a'), long(60, 'b'), long(63, 'a'), long(63, 'b'),
		// Same first 46 characters, different rest.
		strings.Repeat("p", 46) + "-one-thing-here", strings.Repeat("p", 46) + "-another-one-x",
		// Ends up cut on a separator.
		strings.Repeat("q", 45) + "." + strings.Repeat("r", 20),
		strings.Repeat("q", 45) + "-" + strings.Repeat("r", 20),
	}
	seen := map[string]string{}
	for _, in := range inputs {
		got := primaryValue(t, in)
		if len(got) > 63 {
			t.Errorf("%q (%d chars) -> %q is %d characters", in, len(in), got, len(got))
		}
		if !strings.HasSuffix(got, workload.PrimarySuffix) {
			t.Errorf("%q -> %q does not end with %s", in, got, workload.PrimarySuffix)
		}
		if got == in+workload.PrimarySuffix {
			t.Errorf("%q -> %q was not shortened", in, got)
		}
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("%q -> %q is not a valid label value: %v", in, got, errs)
		}
		if again := primaryValue(t, in); again != got {
			t.Errorf("%q -> %q, then %q", in, got, again)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("%q and %q both map to %q", prev, in, got)
		}
		seen[got] = in
	}
	// The short form of short values never collides with a long value's.
	for _, in := range []string{"web", strings.Repeat("x", 55), strings.Repeat("x", 54) + "a"} {
		got := primaryValue(t, in)
		if prev, ok := seen[got]; ok {
			t.Errorf("%q and %q both map to %q", prev, in, got)
		}
		seen[got] = in
	}
}

// TestPrimarySelectorValidLabelValues: every valid non-empty label value
// maps to a valid label value.
func TestPrimarySelectorValidLabelValues(t *testing.T) {
	for _, in := range []string{"a", "0", "a.b", "a_b", "a-b", "A", strings.Repeat("z", 63), "x" + strings.Repeat("-", 61) + "y"} {
		got := primaryValue(t, in)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("%q -> %q is not a valid label value: %v", in, got, errs)
		}
	}
}

// TestPrimarySelectorEmptyValue: a selector may match an empty label value
// (matchLabels {app: ""} is a valid Deployment selector); the primary's
// value must still be a valid label value.
func TestPrimarySelectorEmptyValue(t *testing.T) {
	got := primaryValue(t, "")
	if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
		t.Fatalf(`"" -> %q is not a valid label value: %v`, got, errs)
	}
}

func TestPrimarySelectorRefuses(t *testing.T) {
	expr := []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web"}}}
	tests := []struct {
		name string
		sel  *metav1.LabelSelector
	}{
		{"matchExpressions only", &metav1.LabelSelector{MatchExpressions: expr}},
		{"matchLabels and matchExpressions", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: expr}},
		{"no selector", nil},
		{"empty selector", &metav1.LabelSelector{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := workload.PrimarySelector(deployment(tt.sel))
			if err == nil {
				t.Fatalf("PrimarySelector = %v, want an error", got)
			}
			if !strings.Contains(err.Error(), "deployment shop/web") || !strings.Contains(err.Error(), "matchLabels") {
				t.Fatalf("error %q does not name deployment shop/web and matchLabels", err)
			}
		})
	}
}

// ------------------------------------------------------------------- Primary

func newCanary() *v1alpha1.Canary {
	return &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web-release", Namespace: "shop"},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 8080},
		},
	}
}

func target() *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", Generation: 4, ResourceVersion: "123", UID: "target-uid",
			Labels:      map[string]string{"team": "shop", workload.CanaryLabel: "web-release"},
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "7"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:             p(int32(3)),
			Paused:               true,
			RevisionHistoryLimit: p(int32(2)),
			MinReadySeconds:      5,
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}},
			Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{"app": "web", "tier": "front", "version": "v2"},
					Annotations: map[string]string{"prometheus.io/scrape": "true"},
				},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:2.0"}}},
			},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 3},
	}
}

func TestPrimary(t *testing.T) {
	c, tgt := newCanary(), target()
	before := tgt.DeepCopy()
	got, err := workload.Primary(c, tgt, "rev-abc", 5, "")
	if err != nil {
		t.Fatal(err)
	}

	if got.APIVersion != "apps/v1" || got.Kind != "Deployment" {
		t.Errorf("TypeMeta = %s %s", got.APIVersion, got.Kind)
	}
	if got.Name != "web-primary" || got.Namespace != "shop" {
		t.Errorf("primary = %s/%s, want shop/web-primary", got.Namespace, got.Name)
	}
	if want := map[string]string{workload.CanaryLabel: "web-release"}; !reflect.DeepEqual(got.Labels, want) {
		t.Errorf("labels = %v, want %v", got.Labels, want)
	}
	if want := map[string]string{workload.RevisionAnnotation: "rev-abc"}; !reflect.DeepEqual(got.Annotations, want) {
		t.Errorf("annotations = %v, want %v", got.Annotations, want)
	}
	if got.ResourceVersion != "" || got.UID != "" || got.Generation != 0 {
		t.Errorf("copied server metadata: rv %q uid %q generation %d", got.ResourceVersion, got.UID, got.Generation)
	}
	if want := (appsv1.DeploymentStatus{}); !equality.Semantic.DeepEqual(got.Status, want) {
		t.Errorf("status = %+v, want empty", got.Status)
	}

	wantSel := map[string]string{"app": "web-primary", "tier": "front-primary"}
	if got.Spec.Selector == nil || len(got.Spec.Selector.MatchExpressions) != 0 || !reflect.DeepEqual(got.Spec.Selector.MatchLabels, wantSel) {
		t.Errorf("selector = %+v, want matchLabels %v", got.Spec.Selector, wantSel)
	}
	wantPodLabels := map[string]string{"app": "web-primary", "tier": "front-primary", "version": "v2"}
	if !reflect.DeepEqual(got.Spec.Template.Labels, wantPodLabels) {
		t.Errorf("pod labels = %v, want %v", got.Spec.Template.Labels, wantPodLabels)
	}
	wantPodAnn := map[string]string{"prometheus.io/scrape": "true", workload.RevisionAnnotation: "rev-abc"}
	if !reflect.DeepEqual(got.Spec.Template.Annotations, wantPodAnn) {
		t.Errorf("pod annotations = %v, want %v", got.Spec.Template.Annotations, wantPodAnn)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 5 {
		t.Errorf("replicas = %v, want 5", got.Spec.Replicas)
	}
	if got.Spec.Paused {
		t.Errorf("primary is paused")
	}
	if !equality.Semantic.DeepEqual(got.Spec.Template.Spec, tgt.Spec.Template.Spec) {
		t.Errorf("pod spec differs from the target's")
	}
	if got.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || got.Spec.MinReadySeconds != 5 || *got.Spec.RevisionHistoryLimit != 2 {
		t.Errorf("other spec fields not kept: %+v", got.Spec)
	}
	if workload.PrimaryRevision(got) != "rev-abc" {
		t.Errorf("PrimaryRevision = %q, want rev-abc", workload.PrimaryRevision(got))
	}

	// The target is not touched, and the result shares nothing mutable
	// with it.
	if !equality.Semantic.DeepEqual(tgt, before) {
		t.Fatalf("Primary modified the target:\n%+v\nwas\n%+v", tgt, before)
	}
	got.Spec.Template.Labels["x"] = "y"
	got.Spec.Template.Annotations["x"] = "y"
	got.Spec.Selector.MatchLabels["x"] = "y"
	*got.Spec.Replicas = 9
	got.Spec.Template.Spec.Containers[0].Image = "changed"
	if !equality.Semantic.DeepEqual(tgt, before) {
		t.Fatalf("changing the primary changed the target:\n%+v\nwas\n%+v", tgt, before)
	}
}

func TestPrimaryNilTemplateMaps(t *testing.T) {
	tgt := target()
	tgt.Spec.Template.Labels = nil
	tgt.Spec.Template.Annotations = nil
	got, err := workload.Primary(newCanary(), tgt, "r1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "web-primary", "tier": "front-primary"}; !reflect.DeepEqual(got.Spec.Template.Labels, want) {
		t.Errorf("pod labels = %v, want %v", got.Spec.Template.Labels, want)
	}
	if want := map[string]string{workload.RevisionAnnotation: "r1"}; !reflect.DeepEqual(got.Spec.Template.Annotations, want) {
		t.Errorf("pod annotations = %v, want %v", got.Spec.Template.Annotations, want)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 0 {
		t.Errorf("replicas = %v, want 0", got.Spec.Replicas)
	}
}

func TestPrimaryRefusesMatchExpressions(t *testing.T) {
	tgt := target()
	tgt.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}
	if got, err := workload.Primary(newCanary(), tgt, "r", 1, ""); err == nil || !strings.Contains(err.Error(), "shop/web") {
		t.Fatalf("Primary = %v, %v; want an error naming shop/web", got, err)
	}
}

func TestNames(t *testing.T) {
	if got := workload.PrimaryName("web"); got != "web-primary" {
		t.Errorf("PrimaryName = %q", got)
	}
	c := newCanary()
	if got := workload.ServiceName(c); got != "web" {
		t.Errorf("ServiceName without spec.service.name = %q, want the target's name web", got)
	}
	c.Spec.Service.Name = "api"
	if got := workload.ServiceName(c); got != "api" {
		t.Errorf("ServiceName = %q, want api", got)
	}
	if got := workload.PrimaryRevision(nil); got != "" {
		t.Errorf("PrimaryRevision(nil) = %q", got)
	}
}

// ------------------------------------------------------------------ Services

func TestServices(t *testing.T) {
	tests := []struct {
		name      string
		svc       v1alpha1.ServiceSpec
		wantNames []string
		wantPort  corev1.ServicePort
	}{
		{"defaults", v1alpha1.ServiceSpec{Port: 8080},
			[]string{"web", "web-primary", "web-canary"},
			corev1.ServicePort{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		{"port name", v1alpha1.ServiceSpec{Port: 9090, PortName: "grpc"},
			[]string{"web", "web-primary", "web-canary"},
			corev1.ServicePort{Name: "grpc", Port: 9090, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP}},
		{"numeric targetPort", v1alpha1.ServiceSpec{Port: 80, TargetPort: "8080"},
			[]string{"web", "web-primary", "web-canary"},
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		{"named targetPort", v1alpha1.ServiceSpec{Port: 80, TargetPort: "metrics"},
			[]string{"web", "web-primary", "web-canary"},
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}},
		{"service name", v1alpha1.ServiceSpec{Name: "api", Port: 80},
			[]string{"api", "api-primary", "api-canary"},
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tgt := newCanary(), target()
			c.Spec.Service = tt.svc
			before := tgt.DeepCopy()
			svcs, err := workload.Services(c, tgt)
			if err != nil {
				t.Fatal(err)
			}
			if len(svcs) != 3 {
				t.Fatalf("got %d Services, want 3", len(svcs))
			}
			primarySel := map[string]string{"app": "web-primary", "tier": "front-primary"}
			targetSel := map[string]string{"app": "web", "tier": "front"}
			wantSel := []map[string]string{primarySel, primarySel, targetSel}
			for i, s := range svcs {
				if s.Name != tt.wantNames[i] || s.Namespace != "shop" {
					t.Errorf("service %d = %s/%s, want shop/%s", i, s.Namespace, s.Name, tt.wantNames[i])
				}
				if s.APIVersion != "v1" || s.Kind != "Service" {
					t.Errorf("service %s TypeMeta = %s %s", s.Name, s.APIVersion, s.Kind)
				}
				if want := map[string]string{workload.CanaryLabel: "web-release"}; !reflect.DeepEqual(s.Labels, want) {
					t.Errorf("service %s labels = %v, want %v", s.Name, s.Labels, want)
				}
				if !reflect.DeepEqual(s.Spec.Selector, wantSel[i]) {
					t.Errorf("service %s selector = %v, want %v", s.Name, s.Spec.Selector, wantSel[i])
				}
				if !reflect.DeepEqual(s.Spec.Ports, []corev1.ServicePort{tt.wantPort}) {
					t.Errorf("service %s ports = %+v, want %+v", s.Name, s.Spec.Ports, tt.wantPort)
				}
			}
			// The canary Service's selector is a copy of the target's.
			svcs[2].Spec.Selector["x"] = "y"
			if !equality.Semantic.DeepEqual(tgt, before) {
				t.Fatalf("Services shares the target's selector map")
			}
		})
	}
}

func TestServicesRefusesMatchExpressions(t *testing.T) {
	tgt := target()
	tgt.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}
	if got, err := workload.Services(newCanary(), tgt); err == nil || !strings.Contains(err.Error(), "shop/web") {
		t.Fatalf("Services = %v, %v; want an error naming shop/web", got, err)
	}
}

// ------------------------------------------------------------------- Observe

func TestObserve(t *testing.T) {
	cond := func(typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, msg string) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: typ, Status: status, Message: msg}
	}
	dep := func(replicas *int32, gen, observed int64, updated, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: replicas},
			Status: appsv1.DeploymentStatus{
				ObservedGeneration: observed, UpdatedReplicas: updated, AvailableReplicas: available,
				Replicas: 99, ReadyReplicas: 98, Conditions: conds, // ReadyReplicas is not read
			},
		}
	}
	const (
		failMsg     = `pods "web-1" is forbidden: exceeded quota`
		deadlineMsg = `ReplicaSet "web-abc" has timed out progressing.`
	)
	tests := []struct {
		name string
		d    *appsv1.Deployment
		want engine.Workload
	}{
		{"absent", nil, engine.Workload{}},
		{"status mapped", dep(p(int32(4)), 3, 3, 2, 1),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 1, Current: true}},
		{"replicas default to 1", dep(nil, 1, 1, 1, 1),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, Current: true}},
		{"zero replicas", dep(p(int32(0)), 1, 1, 0, 0),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 0, Current: true}},
		{"observed generation ahead is current", dep(p(int32(1)), 3, 4, 1, 1),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, Current: true}},
		{"observed generation behind is not current", dep(p(int32(1)), 5, 4, 1, 1),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, Current: false}},
		{"healthy conditions are no problem", dep(p(int32(1)), 1, 1, 1, 1,
			cond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "ok"),
			cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "progressing"),
			cond(appsv1.DeploymentReplicaFailure, corev1.ConditionFalse, "no failure")),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, Current: true}},
		{"unavailable is no problem", dep(p(int32(1)), 1, 1, 1, 0,
			cond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable")),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 1, UpdatedReplicas: 1, Current: true}},
		{"replica failure", dep(p(int32(2)), 1, 1, 0, 0,
			cond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, failMsg)),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 2, Current: true, Problem: failMsg}},
		{"progress deadline exceeded", dep(p(int32(2)), 1, 1, 1, 0,
			cond(appsv1.DeploymentProgressing, corev1.ConditionFalse, deadlineMsg)),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 2, UpdatedReplicas: 1, Current: true, Problem: deadlineMsg}},
		{"progressing unknown is no problem", dep(p(int32(2)), 1, 1, 1, 0,
			cond(appsv1.DeploymentProgressing, corev1.ConditionUnknown, "?")),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 2, UpdatedReplicas: 1, Current: true}},
		{"replica failure wins over progressing=False", dep(p(int32(2)), 1, 1, 0, 0,
			cond(appsv1.DeploymentProgressing, corev1.ConditionFalse, deadlineMsg),
			cond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, failMsg)),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 2, Current: true, Problem: failMsg}},
		{"replica failure wins in either order", dep(p(int32(2)), 1, 1, 0, 0,
			cond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, failMsg),
			cond(appsv1.DeploymentProgressing, corev1.ConditionFalse, deadlineMsg)),
			engine.Workload{Exists: true, Revision: "rev", Replicas: 2, Current: true, Problem: failMsg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before *appsv1.Deployment
			if tt.d != nil {
				before = tt.d.DeepCopy()
			}
			got := workload.Observe(tt.d, "rev")
			if tt.d != nil {
				// Every dep() has status.replicas 99: all its pods, old
				// ones included.
				tt.want.StatusReplicas = 99
			}
			if got != tt.want {
				t.Fatalf("Observe =\n%+v\nwant\n%+v", got, tt.want)
			}
			if tt.d != nil && !equality.Semantic.DeepEqual(tt.d, before) {
				t.Fatalf("Observe modified the Deployment")
			}
		})
	}
}
