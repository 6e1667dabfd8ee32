package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// The primary never reads the user's ConfigMaps and Secrets: a mounted
// ConfigMap is refreshed in running pods, so a changed ConfigMap would reach
// the "stable" copy while its release is still being analysed, and neither a
// rollback nor an undo could bring the old data back. Instead the primary
// reads Sluice's copies, one per (object, data): named after the primary,
// the object and the hash of its data, immutable, so the data under a
// primary never moves, and a revision restored from its record
// (v1alpha1.CanaryRevisionSpec.Config) reads exactly the data it had.

// Annotations on copies and on the primary.
const (
	// CopyOfAnnotation on a copy names what it copies: "configmap/<name>"
	// or "secret/<name>".
	CopyOfAnnotation = "sluice.dev/copy-of"
	// CopiesAnnotation on the primary Deployment lists the copies its
	// template references ("configmap/<copy>,secret/<copy>"), so they can
	// be told apart from garbage without its (trimmed) template.
	CopiesAnnotation = "sluice.dev/config-copies"
)

// maxNameLen is the longest ConfigMap or Secret name (a DNS subdomain).
const maxNameLen = 253

// CopyName is the name of the primary's copy of a ConfigMap or Secret
// (ref is "configmap/<name>" or "secret/<name>") whose data hashes to
// hash: "<primary>-<c|s>-<name>-<first 8 of hash>". A name that would be
// too long keeps its beginning and gets a hash of the whole name.
func CopyName(primary, ref, hash string) string {
	kind, name, _ := strings.Cut(ref, "/")
	short := hash[:min(8, len(hash))]
	n := primary + "-" + kind[:1] + "-" + name + "-" + short
	if len(n) <= maxNameLen {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	prefix := strings.TrimRight(n[:maxNameLen-len(short)-10], "-.")
	return prefix + "-" + hex.EncodeToString(sum[:])[:8] + "-" + short
}

// ConfigMapHash is the hash of a ConfigMap's data and binaryData (the
// revision's, and the cache's data-hash annotation).
func ConfigMapHash(cm *corev1.ConfigMap) string {
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data["s:"+k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data["b:"+k] = v
	}
	return DataHash(data)
}

// SecretHash is the hash of a Secret's data.
func SecretHash(s *corev1.Secret) string { return DataHash(s.Data) }

// DataHashOf is the data hash o carries in DataHashAnnotation, "" when
// none: every ConfigMap and Secret in the controller's cache has one.
func DataHashOf(o metav1.Object) string { return o.GetAnnotations()[DataHashAnnotation] }

// SetDataHash records hash in o's DataHashAnnotation.
func SetDataHash(o metav1.Object, hash string) {
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[DataHashAnnotation] = hash
	o.SetAnnotations(ann)
}

// CopyableSecret says whether a Secret can be copied: a service account
// token is issued for its own object and stays a reference to it.
func CopyableSecret(s *corev1.Secret) bool {
	return s.Type != corev1.SecretTypeServiceAccountToken
}

// copyMeta is the metadata of a copy; the caller sets the owner.
func copyMeta(ns, name, ref, canary string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: ns,
		Labels:      map[string]string{CanaryLabel: canary},
		Annotations: map[string]string{CopyOfAnnotation: ref},
	}
}

// ConfigMapCopy is the primary's copy of a ConfigMap: the same data,
// immutable, labelled with the Canary.
func ConfigMapCopy(src *corev1.ConfigMap, name, canary string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: copyMeta(src.Namespace, name, "configmap/"+src.Name, canary),
		Data:       maps.Clone(src.Data),
		BinaryData: maps.Clone(src.BinaryData),
		Immutable:  ptr.To(true),
	}
}

// SecretCopy is the primary's copy of a Secret: the same type and data,
// immutable, labelled with the Canary.
func SecretCopy(src *corev1.Secret, name, canary string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: copyMeta(src.Namespace, name, "secret/"+src.Name, canary),
		Type:       src.Type,
		Data:       maps.Clone(src.Data),
		Immutable:  ptr.To(true),
	}
}

// RewriteConfigRefs points a pod template's references to ConfigMaps and
// Secrets at other names: names maps "configmap/<name>" or
// "secret/<name>" to the new name. References not in names (an optional
// object that does not exist, a service account token) stay as they are.
func RewriteConfigRefs(t *corev1.PodTemplateSpec, names map[string]string) {
	swap := func(kind string, name *string) {
		if n, ok := names[kind+"/"+*name]; ok {
			*name = n
		}
	}
	for i := range t.Spec.Volumes {
		v := &t.Spec.Volumes[i]
		if v.ConfigMap != nil {
			swap("configmap", &v.ConfigMap.Name)
		}
		if v.Secret != nil {
			swap("secret", &v.Secret.SecretName)
		}
		if v.Projected != nil {
			for j := range v.Projected.Sources {
				s := &v.Projected.Sources[j]
				if s.ConfigMap != nil {
					swap("configmap", &s.ConfigMap.Name)
				}
				if s.Secret != nil {
					swap("secret", &s.Secret.Name)
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{t.Spec.InitContainers, t.Spec.Containers} {
		for i := range cs {
			c := &cs[i]
			for j := range c.EnvFrom {
				e := &c.EnvFrom[j]
				if e.ConfigMapRef != nil {
					swap("configmap", &e.ConfigMapRef.Name)
				}
				if e.SecretRef != nil {
					swap("secret", &e.SecretRef.Name)
				}
			}
			for j := range c.Env {
				vf := c.Env[j].ValueFrom
				if vf == nil {
					continue
				}
				if vf.ConfigMapKeyRef != nil {
					swap("configmap", &vf.ConfigMapKeyRef.Name)
				}
				if vf.SecretKeyRef != nil {
					swap("secret", &vf.SecretKeyRef.Name)
				}
			}
		}
	}
}

// ConfigRecords turns data hashes ("configmap/<name>" -> hash) into a
// record's Config, sorted.
func ConfigRecords(hashes map[string]string) []v1alpha1.ConfigRecord {
	var out []v1alpha1.ConfigRecord
	for _, ref := range slices.Sorted(maps.Keys(hashes)) {
		kind, name, _ := strings.Cut(ref, "/")
		k := "ConfigMap"
		if kind == "secret" {
			k = "Secret"
		}
		out = append(out, v1alpha1.ConfigRecord{Kind: k, Name: name, DataHash: hashes[ref]})
	}
	return out
}

// ConfigHashes is the inverse of ConfigRecords.
func ConfigHashes(recs []v1alpha1.ConfigRecord) map[string]string {
	out := make(map[string]string, len(recs))
	for _, r := range recs {
		out[strings.ToLower(r.Kind)+"/"+r.Name] = r.DataHash
	}
	return out
}

// CopyRefs are the copies a primary built from a revision with these data
// hashes reads ("configmap/<copy>", "secret/<copy>").
func CopyRefs(primary string, hashes map[string]string) []string {
	out := make([]string, 0, len(hashes))
	for ref, h := range hashes {
		kind, _, _ := strings.Cut(ref, "/")
		out = append(out, kind+"/"+CopyName(primary, ref, h))
	}
	slices.Sort(out)
	return out
}
