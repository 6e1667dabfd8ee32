package controller_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// configApp is a Deployment that reads the ConfigMap "<name>-settings" and
// the Secret "<name>-creds" every way a pod can: a mounted volume, a
// projected volume, envFrom and env valueFrom.
func configApp(ns, name string) (*appsv1.Deployment, *corev1.ConfigMap, *corev1.Secret) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-settings", Namespace: ns},
		Data: map[string]string{"greeting": "hello"}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-creds", Namespace: ns},
		Data: map[string][]byte{"token": []byte("old-token")}}
	d := app(ns, name, "example.com/"+name+":1", 1)
	ps := &d.Spec.Template.Spec
	ps.Volumes = []corev1.Volume{
		{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: sec.Name}}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}},
		}}}},
	}
	ct := &ps.Containers[0]
	ct.VolumeMounts = []corev1.VolumeMount{{Name: "settings", MountPath: "/etc/settings"}, {Name: "creds", MountPath: "/etc/creds"}}
	ct.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: sec.Name}}}}
	ct.Env = []corev1.EnvVar{
		{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}, Key: "greeting"}}},
		{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: sec.Name}, Key: "token"}}},
	}
	return d, cm, sec
}

// configData reads a ConfigMap's or Secret's data as "k=v" lines, sorted.
func configData(ctx context.Context, cl client.Client, ns, kind, name string) (string, error) {
	data := map[string]string{}
	switch kind {
	case "configmap":
		var cm corev1.ConfigMap
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
			return "", err
		}
		maps.Copy(data, cm.Data)
	case "secret":
		var s corev1.Secret
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return "", err
		}
		for k, v := range s.Data {
			data[k] = string(v)
		}
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(data)) {
		lines = append(lines, k+"="+data[k])
	}
	return strings.Join(lines, ","), nil
}

// configView is what a Deployment's pods read from configuration: for each
// place in the pod template that references a ConfigMap or Secret, the
// object it names and the data a pod started now would get there.
func configView(ctx context.Context, cl client.Client, ns, name string) (map[string]string, error) {
	d, err := deployment(ctx, cl, ns, name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	add := func(where, kind, obj string) error {
		data, err := configData(ctx, cl, ns, kind, obj)
		if err != nil {
			return fmt.Errorf("%s: %s %s: %w", where, kind, obj, err)
		}
		out[where] = kind + "/" + obj + " " + data
		return nil
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			if err := add("volume "+v.Name, "configmap", v.ConfigMap.Name); err != nil {
				return nil, err
			}
		}
		if v.Projected != nil {
			for i, s := range v.Projected.Sources {
				where := fmt.Sprintf("volume %s source %d", v.Name, i)
				if s.Secret != nil {
					err = add(where, "secret", s.Secret.Name)
				}
				if s.ConfigMap != nil {
					err = add(where, "configmap", s.ConfigMap.Name)
				}
				if err != nil {
					return nil, err
				}
			}
		}
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		for i, e := range c.EnvFrom {
			if e.SecretRef != nil {
				if err := add(fmt.Sprintf("envFrom %s %d", c.Name, i), "secret", e.SecretRef.Name); err != nil {
					return nil, err
				}
			}
		}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
			case e.ValueFrom.ConfigMapKeyRef != nil:
				err = add("env "+e.Name, "configmap", e.ValueFrom.ConfigMapKeyRef.Name)
			case e.ValueFrom.SecretKeyRef != nil:
				err = add("env "+e.Name, "secret", e.ValueFrom.SecretKeyRef.Name)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// changeConfig gives the ConfigMap and the Secret new data.
func changeConfig(t *testing.T, cl client.Client, cm *corev1.ConfigMap, sec *corev1.Secret, greeting, token string) {
	t.Helper()
	var have corev1.ConfigMap
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(cm), &have); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(have.DeepCopy())
	have.Data["greeting"] = greeting
	if err := cl.Patch(t.Context(), &have, patch); err != nil {
		t.Fatalf("change configmap %s: %v", cm.Name, err)
	}
	var hs corev1.Secret
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(sec), &hs); err != nil {
		t.Fatal(err)
	}
	spatch := client.MergeFrom(hs.DeepCopy())
	hs.Data["token"] = []byte(token)
	if err := cl.Patch(t.Context(), &hs, spatch); err != nil {
		t.Fatalf("change secret %s: %v", sec.Name, err)
	}
}

// wantView checks that every reference of the view reads the given
// greeting and token.
func wantView(t *testing.T, what string, view map[string]string, greeting, token string) {
	t.Helper()
	if len(view) != 6 {
		t.Errorf("%s: %d references, want 6: %v", what, len(view), view)
	}
	for where, got := range view {
		if strings.Contains(got, "greeting=") && !strings.Contains(got, "greeting="+greeting) ||
			strings.Contains(got, "token=") && !strings.Contains(got, "token="+token) {
			t.Errorf("%s: %s reads %s; want greeting=%s, token=%s", what, where, got, greeting, token)
		}
	}
}

// A ConfigMap and Secret change whose analysis fails leaves what the
// primary's pods read exactly as before: the same objects, the same data,
// in the mounted volumes and in the environment. The user's ConfigMap and
// Secret keep the new data.
func TestConfigChangeFailingAnalysisLeavesPrimaryConfig(t *testing.T) {
	ns, rates, prom := setupAnalysis(t)
	cl := direct
	rates.set("cfgfail", 20)
	scraped(t, prom, "cfgfail", 20)
	d, cm, sec := configApp(ns, "cfgfail")
	create(t, cl, cm, sec, d, analysed(ns, "cfgfail", weightStep(20), pauseStep(time.Hour)))
	waitPhase(t, cl, ns, "cfgfail", v1alpha1.PhaseInitialized, 60*time.Second)
	before, err := configView(t.Context(), cl, ns, "cfgfail-primary")
	if err != nil {
		t.Fatal(err)
	}
	wantView(t, "primary after initialisation", before, "hello", "old-token")

	changeConfig(t, cl, cm, sec, "bonjour", "new-token")
	c := waitPhase(t, cl, ns, "cfgfail", v1alpha1.PhaseFailed, 60*time.Second)
	if c.Status.Reason != "AnalysisFailed" {
		t.Errorf("reason %s: %s; want AnalysisFailed", c.Status.Reason, c.Status.Message)
	}
	after, err := configView(t.Context(), cl, ns, "cfgfail-primary")
	if err != nil {
		t.Fatal(err)
	}
	wantView(t, "primary after the failed release", after, "hello", "old-token")
	for where, was := range before {
		if after[where] != was {
			t.Errorf("primary's %s: %s, was %s", where, after[where], was)
		}
	}
	user, err := configView(t.Context(), cl, ns, "cfgfail")
	if err != nil {
		t.Fatal(err)
	}
	wantView(t, "the user's Deployment", user, "bonjour", "new-token")
	testenv.Eventually(t, 10*time.Second, "canary scaled down", func(ctx context.Context) error {
		d, err := deployment(ctx, cl, ns, "cfgfail")
		if err != nil || *d.Spec.Replicas != 0 {
			return fmt.Errorf("replicas %v %v", d.Spec.Replicas, err)
		}
		return nil
	})
}
