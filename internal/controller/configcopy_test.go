package controller_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/cli"
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

// copiesOf lists the ConfigMaps and Secrets in a namespace labelled with the
// Canary (Sluice's copies), as "configmap/<name>" and "secret/<name>".
func copiesOf(ctx context.Context, cl client.Client, ns, canary string) ([]string, error) {
	sel := client.MatchingLabels{"sluice.dev/canary": canary}
	var cms corev1.ConfigMapList
	if err := cl.List(ctx, &cms, client.InNamespace(ns), sel); err != nil {
		return nil, err
	}
	var secs corev1.SecretList
	if err := cl.List(ctx, &secs, client.InNamespace(ns), sel); err != nil {
		return nil, err
	}
	var out []string
	for _, o := range cms.Items {
		out = append(out, "configmap/"+o.Name)
	}
	for _, o := range secs.Items {
		out = append(out, "secret/"+o.Name)
	}
	slices.Sort(out)
	return out, nil
}

// viewRefs are the distinct objects a configView reads.
func viewRefs(view map[string]string) []string {
	set := map[string]bool{}
	for _, v := range view {
		ref, _, _ := strings.Cut(v, " ")
		set[ref] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// checkCopies checks that every object the primary reads is an immutable
// copy owned by the Canary, named after the primary.
func checkCopies(t *testing.T, cl client.Client, ns, name string, view map[string]string) {
	t.Helper()
	c, err := getCanary(t.Context(), cl, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range viewRefs(view) {
		kind, obj, _ := strings.Cut(ref, "/")
		if !strings.HasPrefix(obj, name+"-primary-") {
			t.Errorf("the primary reads %s, not a copy of its own", ref)
			continue
		}
		var o client.Object = &corev1.ConfigMap{}
		if kind == "secret" {
			o = &corev1.Secret{}
		}
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: obj}, o); err != nil {
			t.Fatal(err)
		}
		immutable := false
		switch x := o.(type) {
		case *corev1.ConfigMap:
			immutable = ptr.Deref(x.Immutable, false)
		case *corev1.Secret:
			immutable = ptr.Deref(x.Immutable, false)
		}
		if !immutable || !metav1.IsControlledBy(o, c) || o.GetLabels()["sluice.dev/canary"] != name {
			t.Errorf("%s: immutable %v, owners %v, labels %v; want an immutable copy owned and labelled by the Canary",
				ref, immutable, o.GetOwnerReferences(), o.GetLabels())
		}
	}
}

// waitView waits until the Deployment's pods would read greeting and token.
func waitView(t *testing.T, cl client.Client, ns, name, greeting, token string) map[string]string {
	t.Helper()
	var view map[string]string
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%s reads greeting=%s token=%s", name, greeting, token), func(ctx context.Context) error {
		var err error
		if view, err = configView(ctx, cl, ns, name); err != nil {
			return err
		}
		for where, got := range view {
			if !strings.Contains(got, "greeting="+greeting) && !strings.Contains(got, "token="+token) {
				return fmt.Errorf("%s reads %s", where, got)
			}
		}
		return nil
	})
	wantView(t, name, view, greeting, token)
	return view
}

// A promoted ConfigMap and Secret change moves the primary to new copies
// holding the new data; the record of each revision names the data hashes
// it read.
func TestPromotedConfigChangeMovesPrimaryToNewCopies(t *testing.T) {
	_, ns, cl := setup(t)
	d, cm, sec := configApp(ns, "cfgok")
	create(t, cl, cm, sec, d, canary(ns, "cfgok", weightStep(50)))
	waitPhase(t, cl, ns, "cfgok", v1alpha1.PhaseInitialized, 60*time.Second)
	before := waitView(t, cl, ns, "cfgok-primary", "hello", "old-token")
	checkCopies(t, cl, ns, "cfgok", before)

	changeConfig(t, cl, cm, sec, "bonjour", "new-token")
	done := waitPhase(t, cl, ns, "cfgok", v1alpha1.PhaseSucceeded, 60*time.Second)
	after := waitView(t, cl, ns, "cfgok-primary", "bonjour", "new-token")
	checkCopies(t, cl, ns, "cfgok", after)
	if old, now := viewRefs(before), viewRefs(after); len(now) != 2 || slices.Equal(old, now) {
		t.Errorf("primary reads %v after the promotion, %v before: want two new copies", now, old)
	}
	rec := waitRecord(t, cl, ns, "cfgok", done.Status.StableRevision, v1alpha1.OutcomeSucceeded)
	if len(rec.Spec.Config) != 2 || rec.Spec.Config[0].Kind != "ConfigMap" || rec.Spec.Config[0].Name != "cfgok-settings" ||
		rec.Spec.Config[1].Kind != "Secret" || rec.Spec.Config[1].DataHash == "" {
		t.Errorf("record's config %+v; want the ConfigMap and the Secret with their data hashes", rec.Spec.Config)
	}
	for _, ref := range viewRefs(after) {
		found := false
		for _, c := range rec.Spec.Config {
			found = found || strings.HasSuffix(ref, c.DataHash[:8])
		}
		if !found {
			t.Errorf("primary reads %s, which no recorded data hash names (%+v)", ref, rec.Spec.Config)
		}
	}
}

// A config change whose promoted primary never becomes Ready fails
// verification, and the restored primary reads the copies of the stable
// revision again: the old data, in every place.
func TestFailedVerificationRestoresConfigCopies(t *testing.T) {
	_, ns, cl := setup(t)
	d, cm, sec := configApp(ns, "cfgver")
	c := verified(canary(ns, "cfgver", weightStep(50)), v1alpha1.Verification{Timeout: &metav1.Duration{Duration: 10 * time.Second}})
	create(t, cl, cm, sec, d, c)
	waitPhase(t, cl, ns, "cfgver", v1alpha1.PhaseInitialized, 60*time.Second)
	before := waitView(t, cl, ns, "cfgver-primary", "hello", "old-token")

	changeConfig(t, cl, cm, sec, "bonjour", "new-token")
	var dep appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cfgver"}, &dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Template.Labels[testenv.UnreadyPrimaryLabel] = "true"
	if err := cl.Patch(t.Context(), &dep, patch); err != nil {
		t.Fatal(err)
	}
	got := waitPhase(t, cl, ns, "cfgver", v1alpha1.PhaseFailed, 90*time.Second)
	if got.Status.Reason != "VerificationFailed" {
		t.Errorf("reason %s: %s; want VerificationFailed", got.Status.Reason, got.Status.Message)
	}
	after := waitView(t, cl, ns, "cfgver-primary", "hello", "old-token")
	for where, was := range before {
		if after[where] != was {
			t.Errorf("restored primary's %s: %s, was %s", where, after[where], was)
		}
	}
}

// undoCLI runs kubectl sluice undo in process.
func undoCLI(t *testing.T, kubeconfig, ns, name string) string {
	t.Helper()
	var out bytes.Buffer
	root := cli.NewRoot(genericiooptions.IOStreams{Out: &out, ErrOut: &out})
	root.SetArgs([]string{"--kubeconfig", kubeconfig, "-n", ns, "undo", name})
	if err := root.Execute(); err != nil {
		t.Fatalf("undo: %v\n%s", err, out.String())
	}
	return out.String()
}

// After an aborted config change, undo gives the user's ConfigMap its
// stable data back from the primary's copy: the target is at the stable
// revision again and nothing is released. (One object changed: undo writes
// objects one at a time, and with two a reconcile between the writes sees a
// revision of its own; see docs/architecture.md, "Undo".)
func TestUndoRestoresConfigData(t *testing.T) {
	cluster, ns, cl := setup(t)
	d, cm, sec := configApp(ns, "cfgundo")
	create(t, cl, cm, sec, d, canary(ns, "cfgundo", weightStep(50), untilPromoted()))
	init := waitPhase(t, cl, ns, "cfgundo", v1alpha1.PhaseInitialized, 60*time.Second)
	before := waitView(t, cl, ns, "cfgundo-primary", "hello", "old-token")

	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["greeting"] = "bonjour"
	if err := cl.Patch(t.Context(), cm, patch); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, ns, "cfgundo", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
	request(t, cl, ns, "cfgundo", "abort")
	waitPhase(t, cl, ns, "cfgundo", v1alpha1.PhaseFailed, 60*time.Second)

	out := undoCLI(t, cluster.Kubeconfig, ns, "cfgundo")
	if !strings.Contains(out, "configmap/cfgundo-settings back to its data at revision #1") ||
		strings.Contains(out, "secret/") || strings.Contains(out, "hello") {
		t.Errorf("undo said:\n%s", out)
	}
	user := waitView(t, cl, ns, "cfgundo", "hello", "old-token")
	for _, ref := range viewRefs(user) {
		if ref != "configmap/cfgundo-settings" && ref != "secret/cfgundo-creds" {
			t.Errorf("the user's Deployment reads %s after undo", ref)
		}
	}
	testenv.Eventually(t, 30*time.Second, "back at the stable revision", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "cfgundo")
		if err != nil {
			return err
		}
		if c.Status.Phase != v1alpha1.PhaseSucceeded || c.Status.Reason != "RevertedToStable" || c.Status.CanaryRevision != init.Status.StableRevision {
			return fmt.Errorf("%s/%s at %s", c.Status.Phase, c.Status.Reason, c.Status.CanaryRevision)
		}
		return nil
	})
	after := waitView(t, cl, ns, "cfgundo-primary", "hello", "old-token")
	if !maps.Equal(before, after) {
		t.Errorf("primary reads %v after undo, %v before", after, before)
	}
}

// Copies live as long as something may read them: the primary, or a kept
// record. With one record kept, every promotion leaves only the copies of
// the stable revision, and the old ones are deleted.
func TestUnusedConfigCopiesAreDeleted(t *testing.T) {
	_, ns, cl := setup(t)
	d, cm, sec := configApp(ns, "cfggc")
	c := canary(ns, "cfggc", weightStep(50))
	c.Spec.RevisionHistoryLimit = ptr.To(int32(1))
	create(t, cl, cm, sec, d, c)
	waitPhase(t, cl, ns, "cfggc", v1alpha1.PhaseInitialized, 60*time.Second)
	first := viewRefs(waitView(t, cl, ns, "cfggc-primary", "hello", "old-token"))
	for i, greeting := range []string{"bonjour", "hola"} {
		token := fmt.Sprintf("token-%d", i)
		changeConfig(t, cl, cm, sec, greeting, token)
		testenv.Eventually(t, 60*time.Second, "promoted "+greeting, func(ctx context.Context) error {
			c, err := getCanary(ctx, cl, ns, "cfggc")
			if err != nil {
				return err
			}
			if c.Status.Phase != v1alpha1.PhaseSucceeded || c.Status.StableRevision != c.Status.CanaryRevision {
				return fmt.Errorf("%s at %s", c.Status.Phase, c.Status.StableRevision)
			}
			return nil
		})
		now := viewRefs(waitView(t, cl, ns, "cfggc-primary", greeting, token))
		testenv.Eventually(t, 30*time.Second, "only the primary's copies left", func(ctx context.Context) error {
			have, err := copiesOf(ctx, cl, ns, "cfggc")
			if err != nil {
				return err
			}
			if !slices.Equal(have, now) {
				return fmt.Errorf("copies %v, the primary reads %v", have, now)
			}
			return nil
		})
	}
	for _, ref := range first {
		kind, name, _ := strings.Cut(ref, "/")
		var o client.Object = &corev1.ConfigMap{}
		if kind == "secret" {
			o = &corev1.Secret{}
		}
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, o); !apierrors.IsNotFound(err) {
			t.Errorf("%s of the first revision: %v; want it deleted", ref, err)
		}
	}
}

// Deleting a Canary after a failed config change keeps the primary serving
// (the last good revision), and with it the copies it reads: no longer
// owned by the Canary, so the garbage collector leaves them.
func TestKeptPrimaryKeepsItsConfigCopies(t *testing.T) {
	_, ns, cl := setup(t)
	d, cm, sec := configApp(ns, "cfgkeep")
	create(t, cl, cm, sec, d, canary(ns, "cfgkeep", weightStep(50), untilPromoted()))
	waitPhase(t, cl, ns, "cfgkeep", v1alpha1.PhaseInitialized, 60*time.Second)
	before := waitView(t, cl, ns, "cfgkeep-primary", "hello", "old-token")
	changeConfig(t, cl, cm, sec, "bonjour", "new-token")
	waitPhase(t, cl, ns, "cfgkeep", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
	request(t, cl, ns, "cfgkeep", "abort")
	waitPhase(t, cl, ns, "cfgkeep", v1alpha1.PhaseFailed, 60*time.Second)

	c, err := getCanary(t.Context(), cl, ns, "cfgkeep")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	// The -canary Service is owned by the Canary: once it is gone, the
	// garbage collector has acted on the Canary's dependents.
	testenv.Eventually(t, 60*time.Second, "canary and its owned Service gone", func(ctx context.Context) error {
		var svc corev1.Service
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cfgkeep-canary"}, &svc); !apierrors.IsNotFound(err) {
			return fmt.Errorf("service cfgkeep-canary still there (%v)", err)
		}
		return nil
	})
	after, err := configView(t.Context(), cl, ns, "cfgkeep-primary")
	if err != nil {
		t.Fatalf("the kept primary's configuration: %v", err)
	}
	if !maps.Equal(before, after) {
		t.Errorf("kept primary reads %v, before the deletion %v", after, before)
	}
	for _, ref := range viewRefs(after) {
		kind, name, _ := strings.Cut(ref, "/")
		var o client.Object = &corev1.ConfigMap{}
		if kind == "secret" {
			o = &corev1.Secret{}
		}
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
			t.Fatal(err)
		}
		if len(o.GetOwnerReferences()) != 0 || o.GetLabels()["sluice.dev/canary"] != "" {
			t.Errorf("%s: owners %v, labels %v; want it released with the primary", ref, o.GetOwnerReferences(), o.GetLabels())
		}
	}
}
