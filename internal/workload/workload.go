// Package workload is the Deployment target: it derives a revision from the
// target's pod template and the configuration it references, builds the
// primary copy and the Services, and turns Deployments into the engine's
// observations. Everything here is a function of objects already read; the
// controller does the reading and writing.
package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Labels and annotations Sluice puts on objects.
const (
	// CanaryLabel marks every object Sluice generates for a Canary, and the
	// target it manages; its value is the Canary's name. The controller's
	// informers select on it.
	CanaryLabel = "sluice.dev/canary"
	// RevisionAnnotation on a pod template records the release revision it
	// runs.
	RevisionAnnotation = "sluice.dev/revision"
	// DataHashAnnotation is set by the controller's cache transform on
	// ConfigMaps and Secrets: the hash of their data, which is dropped.
	DataHashAnnotation = "sluice.dev/data-hash"
	// PrimarySuffix names the primary copy and its Service.
	PrimarySuffix = "-primary"
	// CanarySuffix names the canary Service.
	CanarySuffix = "-canary"
)

// PrimaryName is the name of the primary Deployment for a target.
func PrimaryName(target string) string { return target + PrimarySuffix }

// ServiceName is the apex Service name of a Canary (see
// CanarySpec.GetServiceName).
func ServiceName(c *v1alpha1.Canary) string { return c.Spec.GetServiceName() }

// ConfigRefs lists the ConfigMaps and Secrets a pod template references
// (volumes, projected volumes, envFrom and env valueFrom), sorted, as
// "configmap/<name>" and "secret/<name>".
func ConfigRefs(t *corev1.PodTemplateSpec) []string {
	set := map[string]bool{}
	for _, v := range t.Spec.Volumes {
		if v.ConfigMap != nil {
			set["configmap/"+v.ConfigMap.Name] = true
		}
		if v.Secret != nil {
			set["secret/"+v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					set["configmap/"+s.ConfigMap.Name] = true
				}
				if s.Secret != nil {
					set["secret/"+s.Secret.Name] = true
				}
			}
		}
	}
	containers := slices.Concat(t.Spec.InitContainers, t.Spec.Containers)
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				set["configmap/"+e.ConfigMapRef.Name] = true
			}
			if e.SecretRef != nil {
				set["secret/"+e.SecretRef.Name] = true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				set["configmap/"+r.Name] = true
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				set["secret/"+r.Name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Revision is the release revision of a target: a hash of its pod template
// and of the data of every ConfigMap and Secret it references (configHashes
// maps "configmap/<name>" to a data hash; a missing one hashes as absent).
func Revision(t *corev1.PodTemplateSpec, configHashes map[string]string, ignore ...string) string {
	h := sha256.New()
	if len(ignore) > 0 {
		// Annotations Sluice itself sets from the revision (Consul's
		// service meta) are not part of it.
		t = t.DeepCopy()
		for _, k := range ignore {
			delete(t.Annotations, k)
		}
		if len(t.Annotations) == 0 {
			t.Annotations = nil
		}
	}
	b, _ := json.Marshal(t)
	h.Write(b)
	for _, ref := range ConfigRefs(t) {
		fmt.Fprintf(h, "\n%s=%s", ref, configHashes[ref])
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}

// DataHash hashes a ConfigMap's or Secret's data deterministically.
func DataHash(data map[string][]byte) string {
	keys := slices.Sorted(maps.Keys(data))
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s=%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// PrimarySelector returns the primary's match labels: the target's, each
// value suffixed with -primary so that the target's own selector (and the
// canary Service) never match primary pods. Targets selecting with
// matchExpressions are refused.
func PrimarySelector(target *appsv1.Deployment) (map[string]string, error) {
	sel := target.Spec.Selector
	if sel == nil || len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		return nil, fmt.Errorf("deployment %s/%s: spec.selector must use matchLabels only (matchExpressions cannot be rewritten for the primary copy)", target.Namespace, target.Name)
	}
	out := make(map[string]string, len(sel.MatchLabels))
	for k, v := range sel.MatchLabels {
		out[k] = primaryValue(v)
	}
	return out, nil
}

func primaryValue(v string) string {
	if v == "" {
		// A label value must start with a letter or digit.
		return strings.TrimPrefix(PrimarySuffix, "-")
	}
	s := v + PrimarySuffix
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(v))
	return v[:63-len(PrimarySuffix)-9] + "-" + hex.EncodeToString(sum[:])[:8] + PrimarySuffix
}

// Primary builds the desired primary Deployment: the target's spec with the
// selector and pod labels rewritten, the revision recorded on the pod
// template (also in revisionAnnotation, when the router needs one: see
// router.Registration), the given replicas, owned by the Canary.
func Primary(c *v1alpha1.Canary, target *appsv1.Deployment, revision string, replicas int32, revisionAnnotation string) (*appsv1.Deployment, error) {
	sel, err := PrimarySelector(target)
	if err != nil {
		return nil, err
	}
	tmpl := target.Spec.Template.DeepCopy()
	tmpl.Labels = maps.Clone(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	maps.Copy(tmpl.Labels, sel)
	tmpl.Annotations = maps.Clone(tmpl.Annotations)
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[RevisionAnnotation] = revision
	if revisionAnnotation != "" {
		tmpl.Annotations[revisionAnnotation] = revision
	}
	spec := *target.Spec.DeepCopy()
	spec.Selector = &metav1.LabelSelector{MatchLabels: sel}
	spec.Template = *tmpl
	spec.Replicas = &replicas
	spec.Paused = false
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      PrimaryName(target.Name),
			Namespace: target.Namespace,
			Labels:    map[string]string{CanaryLabel: c.Name},
			Annotations: map[string]string{
				RevisionAnnotation: revision,
			},
		},
		Spec: spec,
	}, nil
}

// Services builds the apex, primary and canary Services, and a blue/green
// strategy's previewService (which selects the canary's pods, as the
// canary Service does).
func Services(c *v1alpha1.Canary, target *appsv1.Deployment) ([]*corev1.Service, error) {
	primarySel, err := PrimarySelector(target)
	if err != nil {
		return nil, err
	}
	name := ServiceName(c)
	port := corev1.ServicePort{
		Name:       c.Spec.Service.GetPortName(),
		Port:       c.Spec.Service.Port,
		TargetPort: c.Spec.Service.GetTargetPort(),
		Protocol:   corev1.ProtocolTCP,
	}
	svc := func(n string, sel map[string]string) *corev1.Service {
		return &corev1.Service{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: c.Namespace,
				Labels: map[string]string{CanaryLabel: c.Name}},
			Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{port}},
		}
	}
	out := []*corev1.Service{
		svc(name, primarySel),
		svc(name+PrimarySuffix, maps.Clone(primarySel)),
		svc(name+CanarySuffix, maps.Clone(target.Spec.Selector.MatchLabels)),
	}
	if bg := c.Spec.Strategy.BlueGreen; bg != nil && bg.PreviewService != "" {
		out = append(out, svc(bg.PreviewService, maps.Clone(target.Spec.Selector.MatchLabels)))
	}
	return out, nil
}

// Observe turns a Deployment (nil when absent) into the engine's view.
// revision is the revision its pod template runs.
func Observe(d *appsv1.Deployment, revision string) engine.Workload {
	if d == nil {
		return engine.Workload{}
	}
	w := engine.Workload{
		Exists:            true,
		Revision:          revision,
		Replicas:          ptrOr(d.Spec.Replicas, 1),
		UpdatedReplicas:   d.Status.UpdatedReplicas,
		AvailableReplicas: d.Status.AvailableReplicas,
		StatusReplicas:    d.Status.Replicas,
		Current:           d.Status.ObservedGeneration >= d.Generation,
	}
	conds := slices.Clone(d.Status.Conditions)
	sort.Slice(conds, func(i, j int) bool { return conds[i].Type < conds[j].Type })
	for _, c := range conds {
		switch {
		case !ProblemCondition(c):
		case c.Type == appsv1.DeploymentReplicaFailure, w.Problem == "":
			w.Problem = c.Message // ReplicaFailure says more than a stalled Progressing
		}
	}
	return w
}

// ProblemCondition says whether a Deployment condition reports a problem
// (replicas that cannot be created, or progress that stopped); its message
// is then the workload's Problem. No other condition's message is read.
func ProblemCondition(c appsv1.DeploymentCondition) bool {
	return (c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue) ||
		(c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse)
}

// PrimaryRevision is the revision a primary Deployment's template records.
func PrimaryRevision(d *appsv1.Deployment) string {
	if d == nil {
		return ""
	}
	return d.Spec.Template.Annotations[RevisionAnnotation]
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
