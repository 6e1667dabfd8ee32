package workload_test

import (
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/internal/workload"
)

var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func TestCopyName(t *testing.T) {
	long := strings.Repeat("a", 240) + ".b"
	cases := []struct {
		primary, ref, hash, want string
	}{
		{"web-primary", "configmap/settings", "0123456789abcdef", "web-primary-c-settings-01234567"},
		{"web-primary", "secret/settings", "0123456789abcdef", "web-primary-s-settings-01234567"},
		{"web-primary", "secret/a.b", "ffff", "web-primary-s-a.b-ffff"},
	}
	for _, c := range cases {
		if got := workload.CopyName(c.primary, c.ref, c.hash); got != c.want {
			t.Errorf("CopyName(%s, %s, %s) = %s, want %s", c.primary, c.ref, c.hash, got, c.want)
		}
	}
	a := workload.CopyName("web-primary", "configmap/"+long, "0123456789abcdef")
	b := workload.CopyName("web-primary", "configmap/"+long+"x", "0123456789abcdef")
	for _, n := range []string{a, b} {
		if len(n) > 253 || !dnsSubdomain.MatchString(n) || !strings.HasSuffix(n, "-01234567") {
			t.Errorf("long name %q (%d): not a valid name ending in the data hash", n, len(n))
		}
	}
	if a == b {
		t.Errorf("two long names collide: %s", a)
	}
}

func TestRewriteConfigRefs(t *testing.T) {
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	tmpl := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cm")}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("cm")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("optional")}},
			}}}},
		},
		InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("sec")}}}}},
		Containers: []corev1.Container{{Name: "app",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("cm")}}},
			Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("cm"), Key: "k"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("sec"), Key: "k"}}},
				{Name: "C", Value: "plain"},
				// A Secret named like the ConfigMap is another object.
				{Name: "D", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("cm"), Key: "k"}}},
			}}},
	}}
	workload.RewriteConfigRefs(tmpl, map[string]string{"configmap/cm": "cm-copy", "secret/sec": "sec-copy"})
	got := strings.Join(workload.ConfigRefs(tmpl), " ")
	if want := "configmap/cm-copy secret/cm secret/optional secret/sec-copy"; got != want {
		t.Errorf("after rewrite the template references %s, want %s", got, want)
	}
	if n := tmpl.Spec.InitContainers[0].EnvFrom[0].SecretRef.Name; n != "sec-copy" {
		t.Errorf("init container's envFrom: %s", n)
	}
}

func TestConfigRecordsRoundTrip(t *testing.T) {
	hashes := map[string]string{"configmap/a": "1", "secret/b": "2"}
	recs := workload.ConfigRecords(hashes)
	if len(recs) != 2 || recs[0].Kind != "ConfigMap" || recs[1].Kind != "Secret" || recs[1].Name != "b" {
		t.Fatalf("records %+v", recs)
	}
	back := workload.ConfigHashes(recs)
	if len(back) != 2 || back["configmap/a"] != "1" || back["secret/b"] != "2" {
		t.Errorf("round trip %v", back)
	}
	if refs := workload.CopyRefs("w-primary", hashes); strings.Join(refs, " ") != "configmap/w-primary-c-a-1 secret/w-primary-s-b-2" {
		t.Errorf("copy refs %v", refs)
	}
}

func TestCopiesKeepDataAndAreImmutable(t *testing.T) {
	cm := &corev1.ConfigMap{Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {0}}}
	cm.Name, cm.Namespace = "cm", "ns"
	cp := workload.ConfigMapCopy(cm, "x", "web")
	if workload.ConfigMapHash(cp) != workload.ConfigMapHash(cm) || cp.Immutable == nil || !*cp.Immutable ||
		cp.Labels[workload.CanaryLabel] != "web" || cp.Annotations[workload.CopyOfAnnotation] != "configmap/cm" || cp.Namespace != "ns" {
		t.Errorf("configmap copy %+v", cp)
	}
	sec := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}
	sc := workload.SecretCopy(sec, "y", "web")
	if workload.SecretHash(sc) != workload.SecretHash(sec) || sc.Type != corev1.SecretTypeTLS || !*sc.Immutable {
		t.Errorf("secret copy %+v", sc)
	}
	if workload.CopyableSecret(&corev1.Secret{Type: corev1.SecretTypeServiceAccountToken}) {
		t.Errorf("a service account token must stay a reference")
	}
	// A ConfigMap's string and binary keys of the same name differ.
	if workload.ConfigMapHash(&corev1.ConfigMap{Data: map[string]string{"k": "v"}}) ==
		workload.ConfigMapHash(&corev1.ConfigMap{BinaryData: map[string][]byte{"k": []byte("v")}}) {
		t.Errorf("data and binaryData hash alike")
	}
}
