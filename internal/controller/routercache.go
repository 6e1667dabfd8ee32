package controller

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/workload"
)

// routerRefIndex indexes Canaries by the user's objects their router reads
// (router.Registration.Refs: "Kind/name").
const routerRefIndex = "spec.router.refs"

// NewRouterCache makes the cache of the routers' kinds (each
// router.Registration's Kinds): only objects labelled sluice.dev/canary
// (those Sluice owns, and the user's objects a router has read, which
// Deps.User labels), managed fields dropped except Sluice's own entries
// (without their field sets: the Consul router reads when Sluice last
// wrote an entry). Its informers start on a kind's first read or watch,
// so a router whose CRDs are not installed costs nothing until a Canary
// selects it. With filter false every object of those kinds is cached.
// With namespaces, only theirs (--watch-namespaces). Its informers report
// to sight (none when nil).
func NewRouterCache(mgr ctrl.Manager, sight *Sight, filter bool, namespaces []string) (cache.Cache, error) {
	var sel labels.Selector
	if filter {
		s, err := ownedSelector()
		if err != nil {
			return nil, err
		}
		sel = s
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: sel,
		DefaultTransform:     keepOwnManagedFields,
		DefaultNamespaces:    namespaceConfigs(namespaces),
		NewInformer:          sight.newInformer(),
	})
	if err != nil {
		return nil, fmt.Errorf("router cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("router cache: %w", err)
	}
	return c, nil
}

// keepOwnManagedFields drops every managed-fields entry but Sluice's own,
// and empties those of their field sets: the time of Sluice's last write
// is all a router reads from them.
func keepOwnManagedFields(in any) (any, error) {
	o, ok := in.(metav1.Object)
	if !ok {
		return in, nil
	}
	var keep []metav1.ManagedFieldsEntry
	for _, m := range o.GetManagedFields() {
		if m.Manager == v1alpha1.FieldOwner {
			m.FieldsV1 = nil
			keep = append(keep, m)
		}
	}
	o.SetManagedFields(keep)
	return in, nil
}

// kindsClient is a router's client: reads of the router's kinds come from
// the router cache, other reads from the manager's cache, and writes go
// to the apiserver.
type kindsClient struct {
	client.Client
	cache client.Reader
	kinds map[schema.GroupKind]bool
}

func (k kindsClient) reader(obj runtime.Object) client.Reader {
	gvk, err := apiutil.GVKForObject(obj, k.Scheme())
	if err != nil {
		return k.Client
	}
	gk := gvk.GroupKind()
	gk.Kind = strings.TrimSuffix(gk.Kind, "List")
	if k.kinds[gk] {
		return k.cache
	}
	return k.Client
}

func (k kindsClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return k.reader(obj).Get(ctx, key, obj, opts...)
}

func (k kindsClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return k.reader(list).List(ctx, list, opts...)
}

// userReader reads a user's object for a router (router.Deps.User): from
// the router cache once labelled; else from the apiserver, and then
// labelled with the Canary's label so that the cache holds it and its
// changes wake the Canary. A List (a router looking for what references
// its objects) is answered by the apiserver: the cache holds only what is
// labelled.
type userReader struct {
	cached client.Reader
	live   client.Reader
	writer client.Writer
	labels map[string]string
}

func (u userReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := u.cached.Get(ctx, key, obj, opts...)
	if !apierrors.IsNotFound(err) {
		return err
	}
	if err := u.live.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	missing := map[string]string{}
	for k, v := range u.labels {
		if _, has := obj.GetLabels()[k]; !has {
			missing[k] = v
		}
	}
	if len(missing) == 0 {
		return nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	l := maps.Clone(obj.GetLabels())
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, missing)
	obj.SetLabels(l)
	if err := u.writer.Patch(ctx, obj, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("label %s %s with %v: %w", kindOf(obj), key, missing, err)
	}
	return nil
}

func (u userReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return u.live.List(ctx, list, opts...)
}

func kindOf(obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return strings.ToLower(k)
	}
	return fmt.Sprintf("%T", obj)
}

// routerWatches starts, once per kind, the watch of a router's kinds on
// the router cache when a Canary first uses the router. A kind the
// cluster does not serve is skipped and tried again on the next use.
type routerWatches struct {
	ctrl    controller.Controller
	cache   cache.Cache
	mapper  meta.RESTMapper
	scheme  *runtime.Scheme
	handler handler.EventHandler

	mu       sync.Mutex
	watching map[schema.GroupKind]schema.GroupVersionKind
}

// ensure watches reg's kinds: for each Kind name the first of its listed
// versions and groups that the cluster serves. A Kind name already
// watched is not looked up again, so a reconcile of a Canary whose
// router's kinds are all watched asks the RESTMapper nothing (a lookup of
// a group the cluster does not serve would refresh discovery).
func (w *routerWatches) ensure(reg router.Registration) error {
	if w == nil || len(reg.Kinds) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	done := map[string]bool{}
	for _, gvk := range reg.Kinds {
		if _, ok := w.watching[gvk.GroupKind()]; ok {
			done[gvk.Kind] = true
		}
	}
	for _, gvk := range reg.Kinds {
		if done[gvk.Kind] {
			continue
		}
		if _, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return fmt.Errorf("router %s: map %s: %w", reg.Name, gvk, err)
		}
		obj, err := w.prototype(gvk)
		if err != nil {
			return err
		}
		if err := w.ctrl.Watch(source.Kind(w.cache, obj, w.handler)); err != nil {
			return fmt.Errorf("router %s: watch %s: %w", reg.Name, gvk, err)
		}
		w.watching[gvk.GroupKind()] = gvk
		done[gvk.Kind] = true
	}
	return nil
}

// watched are the kinds watched so far, for the cleanup of labels.
func (w *routerWatches) watched(reg router.Registration) []schema.GroupVersionKind {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []schema.GroupVersionKind
	for _, gvk := range reg.Kinds {
		if have, ok := w.watching[gvk.GroupKind()]; ok && have == gvk {
			out = append(out, gvk)
		}
	}
	return out
}

// prototype is a typed object when the scheme knows the kind, else an
// unstructured one.
func (w *routerWatches) prototype(gvk schema.GroupVersionKind) (client.Object, error) {
	if w.scheme.Recognizes(gvk) {
		o, err := w.scheme.New(gvk)
		if err != nil {
			return nil, fmt.Errorf("new %s: %w", gvk, err)
		}
		if co, ok := o.(client.Object); ok {
			return co, nil
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// list is an empty list of gvk, typed when the scheme knows the kind (the
// watch's informer is then the one that answers).
func (w *routerWatches) list(gvk schema.GroupVersionKind) (client.ObjectList, error) {
	lgvk := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	if w.scheme.Recognizes(lgvk) {
		o, err := w.scheme.New(lgvk)
		if err != nil {
			return nil, fmt.Errorf("new %s: %w", lgvk, err)
		}
		if l, ok := o.(client.ObjectList); ok {
			return l, nil
		}
	}
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(lgvk)
	return l, nil
}

// canariesForRouterObject maps a router's object to the Canaries it
// concerns: the one its label names (the owner, or the first to read a
// user's object) and those whose router names it (routerRefIndex).
func (r *CanaryReconciler) canariesForRouterObject(ctx context.Context, o client.Object) []reconcile.Request {
	seen := map[string]bool{}
	var out []reconcile.Request
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
		}
	}
	add(o.GetLabels()[workload.CanaryLabel])
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		if gvk, err := apiutil.GVKForObject(o, r.Scheme); err == nil {
			kind = gvk.Kind
		}
	}
	var list v1alpha1.CanaryList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{routerRefIndex: router.Ref(kind, o.GetName())}); err == nil {
		for _, c := range list.Items {
			add(c.Name)
		}
	}
	return out
}

// routerRefs is routerRefIndex's value for a Canary.
func (r *CanaryReconciler) routerRefs(o client.Object) []string {
	c := o.(*v1alpha1.Canary)
	if f := r.Routers.For(c).Refs; f != nil {
		return f(c)
	}
	return nil
}

// unlabelRouterObjects removes the Canary's label from the user's objects
// its router read (those it does not own; owned ones go with the Canary),
// once the route is released: they leave the cache. The labelled objects
// are listed from the cache, and those the Canary names (Refs) are read
// from the apiserver too, so that one the cache has not caught up with
// keeps no label.
func (r *CanaryReconciler) unlabelRouterObjects(ctx context.Context, c *v1alpha1.Canary) error {
	if r.RouterCache == nil {
		return nil
	}
	reg := r.Routers.For(c)
	var refs []string
	if reg.Refs != nil {
		refs = reg.Refs(c)
	}
	for _, gvk := range r.watches.watched(reg) {
		list, err := r.watches.list(gvk)
		if err != nil {
			return err
		}
		if err := r.RouterCache.List(ctx, list, client.InNamespace(c.Namespace), client.MatchingLabels{workload.CanaryLabel: c.Name}); err != nil {
			return fmt.Errorf("canary %s/%s: list %s: %w", c.Namespace, c.Name, gvk.Kind, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return fmt.Errorf("canary %s/%s: list %s: %w", c.Namespace, c.Name, gvk.Kind, err)
		}
		var objs []client.Object
		done := map[string]bool{}
		for _, item := range items {
			if u, ok := item.(client.Object); ok {
				objs = append(objs, u)
				done[u.GetName()] = true
			}
		}
		for _, ref := range refs {
			kind, name, _ := strings.Cut(ref, "/")
			if kind != gvk.Kind || done[name] || r.APIReader == nil {
				continue
			}
			o, err := r.watches.prototype(gvk)
			if err != nil {
				return err
			}
			if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, o); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return fmt.Errorf("canary %s/%s: read %s %s: %w", c.Namespace, c.Name, strings.ToLower(gvk.Kind), name, err)
			}
			objs = append(objs, o)
		}
		for _, u := range objs {
			if u.GetLabels()[workload.CanaryLabel] != c.Name || metav1.IsControlledBy(u, c) {
				continue
			}
			patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, workload.CanaryLabel))
			if err := r.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("canary %s/%s: remove label %s from %s %s: %w", c.Namespace, c.Name, workload.CanaryLabel, strings.ToLower(gvk.Kind), u.GetName(), err)
			}
		}
	}
	return nil
}
