// Package service routes a Canary that names no router through its apex
// Service alone, as kube-proxy (or any data plane reading EndpointSlices)
// balances it:
//
//   - all traffic to one copy (weight 0 or 100) is the apex Service's
//     selector: the primary's pods, or the canary's (a blue/green switch is
//     one selector change);
//   - a share between them is an apex Service without a selector and
//     EndpointSlices Sluice writes, listing Ready endpoints of both copies
//     copied from the -primary and -canary Services' own slices. Requests
//     are spread evenly over endpoints, so the canary's real share is its
//     endpoints over all listed (router.Route.Share): the larger side lists
//     all its Ready endpoints, the smaller as many as bring the share
//     closest to the weight (at least one).
//
// A selector is the steady state, so nothing depends on Sluice outside a
// release's mixed steps: the endpoints Sluice lists are rewritten from the
// copies' slices at each change, while the Canary is mid-release.
package service

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// slices Sluice writes: the EndpointSlice controller leaves them alone.
const ManagedBy = "sluice.dev"

// WeightAnnotation records, on a slice Sluice writes, the canary weight
// its endpoints approximate.
const WeightAnnotation = "sluice.dev/canary-weight"

// Settle is how long a change of the apex Service's endpoints is given to
// reach the nodes' proxies after it is read back: kube-proxy reports
// nothing, and applies changes at most once a second by default
// (--iptables-min-sync-period, and the nftables mode's equivalent).
const Settle = 2 * time.Second

// Router is the no-router router: the apex Service and its endpoints.
type Router struct {
	// Client reads Services (manager cache) and EndpointSlices (router
	// cache) and writes to the apiserver.
	Client client.Client
	Scheme *runtime.Scheme
	// Labels go on the slices Sluice writes.
	Labels map[string]string
	// Apex is the Canary's apex Service.
	Apex string
}

var _ router.Router = (*Router)(nil)

// SliceName is the name of the slice Sluice writes for one copy's
// endpoints behind the apex Service ("primary" or "canary"). The
// EndpointSlice controller names its slices <service>-<5 characters>, so
// these never collide with its.
func SliceName(apex, copyName string) string { return apex + "-sluice-" + copyName }

// copyState is what is known of one copy: its Service's selector and the
// Ready endpoints (with their ports) its own slices list.
type copyState struct {
	name      string
	selector  map[string]string
	endpoints []discoveryv1.Endpoint
	ports     []discoveryv1.EndpointPort
	family    discoveryv1.AddressType
	addrs     map[string]bool
}

type state struct {
	apex            *corev1.Service
	primary, canary copyState
	// served are the Ready addresses the apex Service's endpoints list
	// now: its selector's (EndpointSlice controller) and Sluice's.
	served []string
	// own are the slices Sluice wrote, by copy name.
	own map[string]*discoveryv1.EndpointSlice
	// controllerReady says whether the EndpointSlice controller lists any
	// Ready endpoint for the apex Service.
	controllerReady bool
	// controller are the EndpointSlice controller's slices of the apex
	// Service. Once the Service has no selector the controller stops
	// updating them but does not delete them, and proxies still read them
	// (stale is then true).
	controller []*discoveryv1.EndpointSlice
	stale      bool
}

func (r *Router) read(ctx context.Context, c *v1alpha1.Canary, s router.Split) (*state, error) {
	st := &state{own: map[string]*discoveryv1.EndpointSlice{}}
	var apex corev1.Service
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: r.Apex}, &apex); err != nil {
		if apierrors.IsNotFound(err) {
			return st, nil
		}
		return nil, fmt.Errorf("read service %s/%s: %w", c.Namespace, r.Apex, err)
	}
	st.apex = &apex
	for _, cp := range []struct {
		into     *copyState
		name     string
		backends []router.Backend
	}{{&st.primary, "primary", s.Primary}, {&st.canary, "canary", s.Canary}} {
		cp.into.name = cp.name
		if len(cp.backends) != 1 {
			return nil, fmt.Errorf("canary %s/%s: the %s phase has %d backends; without a router it is the -%s Service alone", c.Namespace, c.Name, cp.name, len(cp.backends), cp.name)
		}
		if err := r.readCopy(ctx, c.Namespace, cp.backends[0].Name, cp.into); err != nil {
			return nil, err
		}
	}
	if err := r.readApexSlices(ctx, c.Namespace, len(apex.Spec.Selector) > 0, st); err != nil {
		return nil, err
	}
	return st, nil
}

// readApexSlices sorts the apex Service's EndpointSlices into st: Sluice's
// own (by copy), the EndpointSlice controller's (stale when the Service
// has no selector), the Ready addresses listed, and whether the controller
// lists any.
func (r *Router) readApexSlices(ctx context.Context, ns string, hasSelector bool, st *state) error {
	list, err := r.slicesOf(ctx, ns, r.Apex)
	if err != nil {
		return err
	}
	served := map[string]bool{}
	for i := range list {
		es := &list[i]
		ours := es.Labels[discoveryv1.LabelManagedBy] == ManagedBy
		if ours {
			for _, n := range []string{"primary", "canary"} {
				if es.Name == SliceName(r.Apex, n) {
					st.own[n] = es
				}
			}
		} else {
			st.controller = append(st.controller, es)
			st.stale = !hasSelector
		}
		for _, ep := range es.Endpoints {
			if ready(ep) {
				for _, a := range ep.Addresses {
					served[a] = true
				}
				if !ours {
					st.controllerReady = true
				}
			}
		}
	}
	st.served = slices.Sorted(maps.Keys(served))
	return nil
}

func (r *Router) readCopy(ctx context.Context, ns, svcName string, into *copyState) error {
	var svc corev1.Service
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: svcName}, &svc); err != nil {
		return fmt.Errorf("read service %s/%s: %w", ns, svcName, err)
	}
	into.selector = svc.Spec.Selector
	into.addrs = map[string]bool{}
	list, err := r.slicesOf(ctx, ns, svcName)
	if err != nil {
		return err
	}
	for _, es := range list {
		if es.Labels[discoveryv1.LabelManagedBy] == ManagedBy {
			continue
		}
		for _, ep := range es.Endpoints {
			if !ready(ep) || len(ep.Addresses) == 0 {
				continue
			}
			if into.ports == nil {
				into.ports, into.family = es.Ports, es.AddressType
			}
			if !equality.Semantic.DeepEqual(into.ports, es.Ports) || into.family != es.AddressType {
				continue // another port mapping (a pod mid-update): not listed
			}
			into.endpoints = append(into.endpoints, ep)
			for _, a := range ep.Addresses {
				into.addrs[a] = true
			}
		}
	}
	// A stable order, so the endpoints chosen stay the same while nothing
	// changes.
	slices.SortFunc(into.endpoints, func(a, b discoveryv1.Endpoint) int { return cmp.Compare(a.Addresses[0], b.Addresses[0]) })
	return nil
}

func (r *Router) slicesOf(ctx context.Context, ns, svc string) ([]discoveryv1.EndpointSlice, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		return nil, fmt.Errorf("list endpointslices of service %s/%s: %w", ns, svc, err)
	}
	return list.Items, nil
}

// ready says whether kube-proxy sends new connections to an endpoint (an
// unset ready condition means ready).
func ready(ep discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// Counts picks how many Ready endpoints of each copy the apex Service
// lists for canary weight w, out of the primary's p and the canary's c:
// the side with the larger share lists all its endpoints, the other as
// many (at least one while w is strictly between 0 and 100) as bring the
// canary's share closest to w; on a tie, the choice that gives the canary
// less.
func Counts(w int32, p, c int) (primary, canary int) {
	switch {
	case w <= 0 || c == 0:
		return p, 0
	case w >= 100 || p == 0:
		return 0, c
	}
	dist := func(np, nc int) float64 { return math.Abs(100*float64(nc)/float64(np+nc) - float64(w)) }
	if w <= 50 {
		best := 1
		for n := 2; n <= c; n++ {
			if dist(p, n) < dist(p, best) {
				best = n
			}
		}
		return p, best
	}
	best := p
	for n := p - 1; n >= 1; n-- {
		if dist(n, c) < dist(best, c) {
			best = n
		}
	}
	return best, c
}

// Apply makes the apex Service carry the split: a selector for all traffic
// to one copy, Sluice's slices for a share.
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	st, err := r.read(ctx, c, s)
	if err != nil {
		return err
	}
	if st.apex == nil {
		return fmt.Errorf("service %s/%s not found: Sluice creates it once the primary is Ready", c.Namespace, r.Apex)
	}
	var whole *copyState
	switch {
	case s.CanaryWeight <= 0:
		whole = &st.primary
	case s.CanaryWeight >= 100:
		whole = &st.canary
	}
	if whole != nil {
		// Requests must stop reaching the other copy at once: Sluice's
		// slices are cut down to this copy first; the selector follows;
		// the slices go once the selector's endpoints are listed.
		for _, cp := range []*copyState{&st.primary, &st.canary} {
			if es := st.own[cp.name]; es != nil && cp != whole && len(es.Endpoints) > 0 {
				if err := r.writeSlice(ctx, c, st, cp, 0, s.CanaryWeight); err != nil {
					return err
				}
			}
		}
		if err := r.setSelector(ctx, st.apex, whole.selector); err != nil {
			return err
		}
		if st.controllerReady || len(whole.endpoints) == 0 {
			return r.deleteOwn(ctx, st)
		}
		return nil
	}
	np, nc := Counts(s.CanaryWeight, len(st.primary.endpoints), len(st.canary.endpoints))
	if err := r.writeSlice(ctx, c, st, &st.primary, np, s.CanaryWeight); err != nil {
		return err
	}
	if err := r.writeSlice(ctx, c, st, &st.canary, nc, s.CanaryWeight); err != nil {
		return err
	}
	if err := r.setSelector(ctx, st.apex, nil); err != nil {
		return err
	}
	// When a Service loses its selector, the EndpointSlice controller
	// leaves its slices in place, and the endpoints controller its
	// Endpoints object, which the EndpointSlice mirroring controller then
	// copies into a slice of its own; both would keep listing the
	// selector's pods beside Sluice's. The Endpoints object goes first (so
	// nothing is mirrored again), then the slices. Both are made again
	// when the selector returns.
	if len(st.controller) == 0 {
		return nil
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: r.Apex}}
	if err := r.Client.Delete(ctx, ep); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete endpoints %s/%s: %w", c.Namespace, r.Apex, err)
	}
	for _, es := range st.controller {
		if err := r.Client.Delete(ctx, es); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete endpointslice %s/%s: %w", es.Namespace, es.Name, err)
		}
	}
	return nil
}

// writeSlice writes Sluice's slice of one copy behind the apex Service,
// listing its first n Ready endpoints.
func (r *Router) writeSlice(ctx context.Context, c *v1alpha1.Canary, st *state, cp *copyState, n int, weight int32) error {
	eps := make([]discoveryv1.Endpoint, 0, n)
	for _, ep := range cp.endpoints[:n] {
		ep = *ep.DeepCopy()
		ep.Hints = nil
		eps = append(eps, ep)
	}
	family := cp.family
	if family == "" {
		family = discoveryv1.AddressTypeIPv4
	}
	labels := maps.Clone(r.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[discoveryv1.LabelServiceName] = r.Apex
	labels[discoveryv1.LabelManagedBy] = ManagedBy
	want := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Name: SliceName(r.Apex, cp.name), Namespace: c.Namespace, Labels: labels,
			Annotations: map[string]string{WeightAnnotation: strconv.Itoa(int(weight))}},
		AddressType: family,
		Endpoints:   eps,
		Ports:       cp.ports,
	}
	if have := st.own[cp.name]; have != nil && have.AddressType == want.AddressType &&
		equality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(have.Ports, want.Ports) &&
		have.Annotations[WeightAnnotation] == want.Annotations[WeightAnnotation] {
		return nil
	}
	if have := st.own[cp.name]; have != nil && have.AddressType != want.AddressType {
		// The address type cannot change in place.
		if err := r.Client.Delete(ctx, have); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete endpointslice %s/%s: %w", have.Namespace, have.Name, err)
		}
	}
	if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
		return fmt.Errorf("endpointslice %s/%s: owner: %w", want.Namespace, want.Name, err)
	}
	if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply endpointslice %s/%s: %w", want.Namespace, want.Name, err)
	}
	st.own[cp.name] = want
	return nil
}

// setSelector sets the apex Service's selector (nil: none), replacing the
// one it has.
func (r *Router) setSelector(ctx context.Context, svc *corev1.Service, sel map[string]string) error {
	if maps.Equal(svc.Spec.Selector, sel) {
		return nil
	}
	// A merge patch merges maps: keys the new selector drops are set to
	// null.
	patchSel := map[string]any{}
	for k := range svc.Spec.Selector {
		patchSel[k] = nil
	}
	for k, v := range sel {
		patchSel[k] = v
	}
	var body any = patchSel
	if len(sel) == 0 {
		body = nil
	}
	raw, err := json.Marshal(map[string]any{"spec": map[string]any{"selector": body}})
	if err != nil {
		return fmt.Errorf("service %s/%s: selector patch: %w", svc.Namespace, svc.Name, err)
	}
	if err := r.Client.Patch(ctx, svc, client.RawPatch(types.MergePatchType, raw), client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("set selector of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

func (r *Router) deleteOwn(ctx context.Context, st *state) error {
	for _, es := range st.own {
		if err := r.Client.Delete(ctx, es); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete endpointslice %s/%s: %w", es.Namespace, es.Name, err)
		}
	}
	return nil
}

// Observe reads back what the apex Service's endpoints carry: 0 when
// every Ready endpoint it lists is the primary's, 100 when every one is
// the canary's, and with both, the weight Sluice's slices were written
// for, with the endpoints of each copy (Route.Share). Pending while it
// lists none, or endpoints of neither copy.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	st, err := r.read(ctx, c, s)
	if err != nil || st.apex == nil {
		return engine.Route{}, err
	}
	var np, nc, other int
	for _, a := range st.served {
		switch {
		case st.canary.addrs[a]:
			nc++
		case st.primary.addrs[a]:
			np++
		default:
			other++
		}
	}
	out := engine.Route{Exists: true, Settle: Settle, Share: &v1alpha1.EndpointShare{Primary: int32(np), Canary: int32(nc)}}
	switch {
	case st.stale:
		out.Pending = fmt.Sprintf("service %s has no selector, and the EndpointSlice controller's slices of it are not deleted yet", r.Apex)
	case other > 0:
		out.Pending = fmt.Sprintf("service %s lists %d Ready endpoints of neither copy (its endpoints are being updated)", r.Apex, other)
	case np == 0 && nc == 0:
		out.Pending = fmt.Sprintf("service %s lists no Ready endpoint yet", r.Apex)
	case nc == 0:
		out.CanaryWeight = 0
	case np == 0:
		out.CanaryWeight = 100
	default:
		w := -1
		for _, es := range st.own {
			if v, err := strconv.Atoi(es.Annotations[WeightAnnotation]); err == nil {
				w = v
			}
		}
		if w < 0 {
			out.Pending = fmt.Sprintf("service %s lists both copies' endpoints without Sluice's slices", r.Apex)
		}
		out.CanaryWeight = int32(max(w, 0))
		wantP, wantC := Counts(out.CanaryWeight, len(st.primary.endpoints), len(st.canary.endpoints))
		if wantP != np || wantC != nc {
			out.Pending = fmt.Sprintf("service %s lists %d primary and %d canary endpoints; %d and %d are Ready for weight %d%%", r.Apex, np, nc, wantP, wantC, out.CanaryWeight)
		}
	}
	return out, nil
}

// Release hands the apex Service back when the Canary is deleted: its
// selector was set by the controller (the copy that serves); Sluice's
// slices go once that selector's endpoints are listed.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, _ router.Backend) error {
	st := &state{own: map[string]*discoveryv1.EndpointSlice{}}
	if err := r.readApexSlices(ctx, c.Namespace, true, st); err != nil {
		return err
	}
	if len(st.own) > 0 && !st.controllerReady {
		return fmt.Errorf("service %s/%s: waiting for the EndpointSlice controller to list the serving copy's endpoints before removing Sluice's", c.Namespace, r.Apex)
	}
	return r.deleteOwn(ctx, st)
}
