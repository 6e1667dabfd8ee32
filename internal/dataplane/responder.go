// Package dataplane runs the parts of a real data plane the local control
// plane lacks, for the end-to-end tests and the playground: a real Traefik
// (built from its Go module by hack/traefik.sh), a service responder that
// answers on each Service's ClusterIP as the Service's Ready pods would,
// and a load generator.
//
// The local control plane has fake nodes (kwok): pods are Ready but run
// nothing, and there is no kube-proxy. Services get ClusterIPs in a
// loopback range, which a local process can bind, so Traefik with
// nativeLBByDefault sends real requests to the ClusterIP, where the
// responder answers. Everything in front of it is real: the routes Sluice
// writes, Traefik's weighting and mirroring, its metrics.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	listersdiscoveryv1 "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// What a pod's first container's environment tells the responder.
const (
	// EnvVersion is the version string a pod answers with (default: the
	// container's image).
	EnvVersion = "VERSION"
	// EnvErrorRate is the fraction (0..1) of requests it answers with 500.
	EnvErrorRate = "ERROR_RATE"
	// EnvLatency is how long it takes to answer (a Go duration).
	EnvLatency = "LATENCY"
)

// Header names on every answer.
const (
	HeaderVersion = "X-Version"
	HeaderPod     = "X-Pod"
)

// Responder answers on every Service's ClusterIP:port in a namespace.
type Responder struct {
	ns       string
	pods     listersv1.PodLister
	services listersv1.ServiceLister
	slices   listersdiscoveryv1.EndpointSliceLister

	mu        sync.Mutex
	listeners map[string]*http.Server // "ip:port"
	closed    bool
	// counts are the answers given, by version; mirrored requests, whose
	// answers the proxy discards, are counted here too.
	counts map[string]int64
}

// StartResponder watches the namespace's Services and Pods and serves
// until ctx ends.
func StartResponder(ctx context.Context, cfg *rest.Config, ns string) (*Responder, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("responder: client: %w", err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	r := &Responder{ns: ns, pods: f.Core().V1().Pods().Lister(), services: f.Core().V1().Services().Lister(),
		slices:    f.Discovery().V1().EndpointSlices().Lister(),
		listeners: map[string]*http.Server{}, counts: map[string]int64{}}
	svcInformer := f.Core().V1().Services().Informer()
	if _, err := svcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.serve(o) },
		UpdateFunc: func(_, o any) { r.serve(o) },
		DeleteFunc: func(o any) { r.unserve(o) },
	}); err != nil {
		return nil, fmt.Errorf("responder: watch services: %w", err)
	}
	f.Core().V1().Pods().Informer()
	f.Discovery().V1().EndpointSlices().Informer()
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("responder: %v cache did not sync", typ)
		}
	}
	go func() {
		<-ctx.Done()
		r.Close()
	}()
	return r, nil
}

// Counts returns the number of answers given so far, by version.
func (r *Responder) Counts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

// Close stops every listener.
func (r *Responder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for addr, s := range r.listeners {
		_ = s.Close()
		delete(r.listeners, addr)
	}
}

func (r *Responder) serve(o any) {
	svc, ok := o.(*corev1.Service)
	if !ok || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, p := range svc.Spec.Ports {
		addr := net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(p.Port)))
		if _, ok := r.listeners[addr]; ok {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // not a loopback range, or taken: nothing to answer
		}
		name := svc.Name
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.answer(w, req, name) }),
			ReadHeaderTimeout: 10 * time.Second}
		r.listeners[addr] = s
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				_ = ln.Close()
			}
		}()
	}
}

func (r *Responder) unserve(o any) {
	svc, ok := o.(*corev1.Service)
	if !ok {
		if t, isTomb := o.(cache.DeletedFinalStateUnknown); isTomb {
			svc, ok = t.Obj.(*corev1.Service)
		}
		if !ok {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range svc.Spec.Ports {
		addr := net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(p.Port)))
		if s, ok := r.listeners[addr]; ok {
			_ = s.Close()
			delete(r.listeners, addr)
		}
	}
}

// answer serves one request as a Ready pod behind the Service, chosen at
// random, would: its version, its error rate, its latency. With no Ready
// pod it answers 503, as a proxy in front of an empty Service does.
func (r *Responder) answer(w http.ResponseWriter, req *http.Request, service string) {
	ready, err := r.readyPods(service)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if len(ready) == 0 {
		http.Error(w, "no Ready pod behind service "+service, http.StatusServiceUnavailable)
		return
	}
	pod := ready[rand.IntN(len(ready))]
	version, errRate, latency := behaviour(pod)
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	r.counts[version]++
	r.mu.Unlock()
	w.Header().Set(HeaderVersion, version)
	w.Header().Set(HeaderPod, pod.Name)
	if errRate > 0 && rand.Float64() < errRate {
		http.Error(w, version+" failed", http.StatusInternalServerError)
		return
	}
	_, _ = fmt.Fprintln(w, version)
}

// readyPods are the pods a Service sends to: its selector's Ready pods,
// or, for a Service without a selector, the Ready endpoints its
// EndpointSlices list (as kube-proxy reads them), each counted once per
// time it is listed.
func (r *Responder) readyPods(service string) ([]*corev1.Pod, error) {
	svc, err := r.services.Services(r.ns).Get(service)
	if err != nil {
		return nil, fmt.Errorf("no such service %s", service)
	}
	if len(svc.Spec.Selector) == 0 {
		list, err := r.slices.EndpointSlices(r.ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
		if err != nil {
			return nil, err
		}
		var out []*corev1.Pod
		for _, es := range list {
			for _, ep := range es.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
					continue
				}
				if p, err := r.pods.Pods(r.ns).Get(ep.TargetRef.Name); err == nil {
					out = append(out, p)
				}
			}
		}
		return out, nil
	}
	pods, err := r.pods.Pods(r.ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return nil, err
	}
	var ready []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && podReady(p) {
			ready = append(ready, p)
		}
	}
	return ready, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// behaviour reads a pod's version, error rate and latency from its first
// container.
func behaviour(p *corev1.Pod) (version string, errRate float64, latency time.Duration) {
	if len(p.Spec.Containers) == 0 {
		return "", 0, 0
	}
	c := p.Spec.Containers[0]
	version = c.Image
	for _, e := range c.Env {
		switch e.Name {
		case EnvVersion:
			version = e.Value
		case EnvErrorRate:
			errRate, _ = strconv.ParseFloat(e.Value, 64)
		case EnvLatency:
			latency, _ = time.ParseDuration(e.Value)
		}
	}
	return version, errRate, latency
}
