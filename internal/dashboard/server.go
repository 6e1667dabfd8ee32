// Package dashboard is `kubectl sluice dashboard`: a web UI served from the
// plugin on localhost, talking to the cluster with the user's own
// kubeconfig, so the user's RBAC decides what they see and may do.
//
// One cache (a watch per kind: Canaries, their records, their Events) feeds
// every open page; each page holds one event stream (/api/stream), which
// the page closes while it is hidden. A change is pushed to the streams
// that show it, coalesced, so many tabs cost the cluster nothing more.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

//go:embed static
var static embed.FS

// Options configure a dashboard.
type Options struct {
	// Config is the user's client config.
	Config *rest.Config
	// Namespace limits the dashboard to one namespace; "" is every
	// namespace (the user then needs to list Canaries cluster-wide).
	Namespace string
	// Token, when set, is required on every request (a cookie set from
	// ?token= on the first visit, or an Authorization: Bearer header).
	// Required when the dashboard listens beyond loopback.
	Token string
	// Keepalive is how often an idle stream gets a comment; 15s when 0.
	Keepalive time.Duration
}

// Server is a running dashboard's state: its cache and open streams.
type Server struct {
	opts   Options
	cache  cache.Cache
	client client.Client
	hub    *hub
	// records and events are false when the user may not list them (the
	// page says so); their informers are then not started.
	records, events bool
}

// NewToken makes a random token for Options.Token.
func NewToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Eventual errors while starting name what the user may not do.
func forbiddenHint(what, ns string, err error) error {
	scope := "in namespace " + ns
	if ns == "" {
		scope = "in every namespace (or give -n <namespace>)"
	}
	return fmt.Errorf("list %s %s: %w", what, scope, err)
}

// New checks the user may list Canaries, starts the cache and waits until
// it has read them. Records and Events are shown when the user may list
// them, and left out otherwise.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Keepalive == 0 {
		o.Keepalive = 15 * time.Second
	}
	sch, err := scheme()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(o.Config, client.Options{Scheme: sch})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	s := &Server{opts: o, client: cl, hub: newHub()}
	probe := func(list client.ObjectList) error {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return cl.List(pctx, list, client.InNamespace(o.Namespace), client.Limit(1))
	}
	if err := probe(&v1alpha1.CanaryList{}); err != nil {
		return nil, forbiddenHint("canaries", o.Namespace, err)
	}
	s.records = probe(&v1alpha1.CanaryRevisionList{}) == nil
	s.events = probe(&corev1.EventList{}) == nil

	co := cache.Options{
		Scheme: sch,
		ByObject: map[client.Object]cache.ByObject{
			// Only Events about Canaries; and records without their pod
			// template (undo reads it past the cache).
			&corev1.Event{}:            {Field: fields.OneTermEqualSelector("involvedObject.kind", "Canary")},
			&v1alpha1.CanaryRevision{}: {Transform: stripRecord},
		},
		DefaultTransform: func(obj any) (any, error) {
			if o, ok := obj.(client.Object); ok {
				o.SetManagedFields(nil)
			}
			return obj, nil
		},
	}
	if o.Namespace != "" {
		co.DefaultNamespaces = map[string]cache.Config{o.Namespace: {}}
	}
	if s.cache, err = cache.New(o.Config, co); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if s.events {
		if err := s.cache.IndexField(ctx, &corev1.Event{}, eventObjectIndex, func(obj client.Object) []string {
			e := obj.(*corev1.Event)
			return []string{e.InvolvedObject.Name}
		}); err != nil {
			return nil, fmt.Errorf("index events: %w", err)
		}
	}
	kinds := []struct {
		on  bool
		obj client.Object
		key func(any) (string, bool)
	}{
		{true, &v1alpha1.Canary{}, canaryKey},
		{s.records, &v1alpha1.CanaryRevision{}, recordKey},
		{s.events, &corev1.Event{}, eventKey},
	}
	for _, k := range kinds {
		if !k.on {
			continue
		}
		inf, err := s.cache.GetInformer(ctx, k.obj, cache.BlockUntilSynced(false))
		if err != nil {
			return nil, fmt.Errorf("informer for %T: %w", k.obj, err)
		}
		key := k.key
		changed := func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if name, ok := key(obj); ok {
				s.hub.changed(name)
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, obj any) { changed(obj) },
			DeleteFunc: changed,
		}); err != nil {
			return nil, fmt.Errorf("watch %T: %w", k.obj, err)
		}
	}
	go func() { _ = s.cache.Start(ctx) }()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !s.cache.WaitForCacheSync(sctx) {
		return nil, errors.New("the cache did not fill within a minute: is the apiserver reachable?")
	}
	return s, nil
}

const eventObjectIndex = "involvedObject.name"

// stripRecord is the controller's cache transform for records
// (controller.StripRecordTemplate), repeated here so the plugin does not
// link the controller.
func stripRecord(obj any) (any, error) {
	if rec, ok := obj.(*v1alpha1.CanaryRevision); ok {
		rec.Spec.Template.Raw, rec.Spec.Template.Object = nil, nil
		rec.ManagedFields = nil
	}
	return obj, nil
}

func canaryKey(obj any) (string, bool) {
	c, ok := obj.(*v1alpha1.Canary)
	if !ok {
		return "", false
	}
	return c.Namespace + "/" + c.Name, true
}

func recordKey(obj any) (string, bool) {
	r, ok := obj.(*v1alpha1.CanaryRevision)
	if !ok || r.Spec.Canary == "" {
		return "", false
	}
	return r.Namespace + "/" + r.Spec.Canary, true
}

func eventKey(obj any) (string, bool) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return "", false
	}
	return e.InvolvedObject.Namespace + "/" + e.InvolvedObject.Name, true
}

// Handler serves the pages, the API and the streams.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(static, "static")
	files := http.FileServerFS(assets)
	mux.Handle("GET /", files)
	mux.HandleFunc("GET /api/canaries", s.serveList)
	mux.HandleFunc("GET /api/canaries/{namespace}/{name}", s.serveDetail)
	mux.HandleFunc("GET /api/stream", s.serveStream)
	mux.HandleFunc("POST /api/canaries/{namespace}/{name}/{action}", s.serveAction)
	return s.guard(mux)
}

// Serve listens on addr until ctx ends. Beyond loopback a token is required.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Loopback says whether an address only listens on this machine.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const (
	tokenCookie = "sluice-dashboard"
	// actionHeader must be on every POST: a page of another origin cannot
	// send it without a CORS preflight, which is never granted.
	actionHeader = "X-Sluice-Dashboard"
)

// guard checks the token when there is one, the Host (only a loopback
// name without a token, so another site's DNS cannot point at the
// dashboard) and, on a POST, the same-origin header.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		if t := s.opts.Token; t != "" {
			if !s.tokenOK(w, r) {
				http.Error(w, "this dashboard needs its token: open the URL kubectl sluice dashboard printed", http.StatusUnauthorized)
				return
			}
		} else if !loopbackHost(r.Host) {
			http.Error(w, "host "+r.Host+" refused: without a token the dashboard answers only on localhost", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if r.Header.Get(actionHeader) == "" {
				http.Error(w, "actions need the "+actionHeader+" header (sent by the dashboard's own page)", http.StatusForbidden)
				return
			}
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
				http.Error(w, "origin "+o+" refused", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tokenOK(w http.ResponseWriter, r *http.Request) bool {
	want := []byte(s.opts.Token)
	match := func(v string) bool { return v != "" && subtle.ConstantTimeCompare([]byte(v), want) == 1 }
	if c, err := r.Cookie(tokenCookie); err == nil && match(c.Value) {
		return true
	}
	if h := r.Header.Get("Authorization"); match(strings.TrimPrefix(h, "Bearer ")) {
		return true
	}
	if match(r.URL.Query().Get("token")) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.opts.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return true
	}
	return false
}

func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
