package convert

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options are the choices a source leaves to its controller's flags.
type Options struct {
	// FlaggerProvider is the provider of a Flagger Canary without
	// spec.provider (Flagger's -mesh-provider flag), e.g. gatewayapi.
	FlaggerProvider string
	// Handover adds, after each converted Flagger Canary, the objects
	// that carry a live service's traffic while Flagger's objects are
	// deleted and Sluice's made, with the steps as comments (marked
	// Output.Handover).
	Handover bool
}

// Output is one Sluice object and where it came from.
type Output struct {
	Object client.Object
	// From is the source object, "Kind namespace/name".
	From string
	// Comment, when set, heads the object instead of the source and its
	// report (lines without the leading "# ").
	Comment string
	// Handover marks an object of the switch-over (Options.Handover),
	// applied before the Sluice objects and deleted after.
	Handover bool
}

// SplitHandover separates the hand-over objects from the rest: they are
// applied at another step of the switch, so they go to a file of their
// own.
func (r Result) SplitHandover() (rest, handover Result) {
	rest, handover = r, Result{}
	rest.Outputs = nil
	for _, o := range r.Outputs {
		if o.Handover {
			handover.Outputs = append(handover.Outputs, o)
		} else {
			rest.Outputs = append(rest.Outputs, o)
		}
	}
	return rest, handover
}

// Result is what Convert made and the fate of every source field.
type Result struct {
	Outputs []Output
	Report  Report
	// Ignored are the input objects that are not a source kind ("Kind
	// namespace/name"); Services and HTTPRoutes among them are read for
	// what a Rollout leaves to them.
	Ignored []string
}

// Source kinds, by apiVersion and kind.
const (
	flaggerGroup = "flagger.app/v1beta1"
	argoGroup    = "argoproj.io/v1alpha1"
)

// input is the set of objects given, indexed for lookups between them.
type input struct {
	objs []map[string]any
}

// find is the object of kind and name in namespace ns (any namespace for
// a cluster-scoped kind), or nil.
func (in input) find(apiVersionPrefix, kind, ns, name string) map[string]any {
	for _, o := range in.objs {
		av, _ := o["apiVersion"].(string)
		if !strings.HasPrefix(av, apiVersionPrefix) || o["kind"] != kind {
			continue
		}
		md, _ := o["metadata"].(map[string]any)
		if md["name"] != name {
			continue
		}
		if ons, _ := md["namespace"].(string); ons == "" || ns == "" || ons == ns {
			return o
		}
	}
	return nil
}

// Convert converts every source object among objs (each one decoded
// manifest), in order. Objects of other kinds are only read for lookups.
func Convert(objs []map[string]any, opts Options) Result {
	in := input{objs: objs}
	var r Result
	for _, o := range objs {
		av, _ := o["apiVersion"].(string)
		kind, _ := o["kind"].(string)
		name, ns := nameOf(o)
		ref := kind + " " + ns + "/" + name
		if ns == "" {
			ref = kind + " " + name
		}
		t := newTracker(ref, o)
		var outs []Output
		switch {
		case av == flaggerGroup && kind == "Canary":
			outs = flaggerCanary(t, in, opts)
		case av == flaggerGroup && kind == "MetricTemplate":
			outs = flaggerMetricTemplate(t)
		case av == flaggerGroup && kind == "AlertProvider":
			outs = flaggerAlertProvider(t)
		case av == argoGroup && kind == "Rollout":
			outs = argoRollout(t, in)
		case av == argoGroup && (kind == "AnalysisTemplate" || kind == "ClusterAnalysisTemplate"):
			argoAnalysisTemplate(t, in)
		default:
			r.Ignored = append(r.Ignored, ref)
			continue
		}
		for i := range outs {
			outs[i].From = ref
		}
		r.Outputs = append(r.Outputs, outs...)
		r.Report.Entries = append(r.Report.Entries, t.finish()...)
	}
	return r
}

func nameOf(o map[string]any) (name, ns string) {
	md, _ := o["metadata"].(map[string]any)
	name, _ = md["name"].(string)
	ns, _ = md["namespace"].(string)
	return name, ns
}

// objectMeta carries the source's name, namespace, labels and annotations
// (Kubernetes' own annotations left out).
func objectMeta(t *tracker, name string) metav1.ObjectMeta {
	md := t.at("metadata")
	m := metav1.ObjectMeta{Name: name, Namespace: md.get("namespace").str(), Labels: md.get("labels").stringMap()}
	for k, v := range md.get("annotations").stringMap() {
		if strings.Contains(k, "kubernetes.io/") {
			continue
		}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[k] = v
	}
	return m
}

// fromJSON fills out from a value built as maps and lists, for the
// Gateway API types whose shape is the source's.
func fromJSON(v any, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// duration parses a Go duration, or a number of seconds.
func duration(n node) (*metav1.Duration, bool) {
	if s, ok := n.int(); ok && s > 0 {
		return &metav1.Duration{Duration: time.Duration(s) * time.Second}, true
	}
	d, err := time.ParseDuration(n.str())
	if err != nil || d <= 0 {
		return nil, false
	}
	return &metav1.Duration{Duration: d}, true
}

func ptr[T any](v T) *T { return &v }

func seconds(n node) *metav1.Duration {
	s, ok := n.int()
	if !ok || s <= 0 {
		return nil
	}
	return &metav1.Duration{Duration: time.Duration(s) * time.Second}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
