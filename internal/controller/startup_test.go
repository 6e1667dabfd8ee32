package controller_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	crdbases "github.com/sluice-dev/sluice/config/crd/bases"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// The controller waits for the kind of every CRD Sluice ships, at the
// version it stores, and for nothing else of Sluice's.
func TestSluiceKindsAreTheShippedCRDs(t *testing.T) {
	files, err := fs.Glob(crdbases.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var shipped []string
	for _, f := range files {
		b, err := fs.ReadFile(crdbases.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Storage {
				shipped = append(shipped, schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}.String())
			}
		}
	}
	var waited []string
	for _, k := range controller.SluiceKinds() {
		waited = append(waited, k.String())
	}
	slices.Sort(shipped)
	slices.Sort(waited)
	if !slices.Equal(shipped, waited) {
		t.Errorf("the controller waits for %q; config/crd/bases ships %q", waited, shipped)
	}
}

// Run against a cluster that does not serve one of the kinds it needs
// (Sluice's own CRDs are shared by every test, so the missing kind is a
// Widget of a group made for this test): it answers its probes at once,
// live and not ready, says what it waits for, and builds the controllers
// only once the Widget CRD is Established and served; then it is ready
// and reconciles Canaries.
func TestRunWaitsForItsKinds(t *testing.T) {
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	ns := c.Namespace(t)
	widgets := newWidgetCRD(t)
	gvk := schema.GroupVersionKind{Group: widgets.Spec.Group, Version: "v1", Kind: "Widget"}
	wantMissing := "Widget.v1." + gvk.Group
	instance := "startup-" + ns
	logs := &lines{}
	addr, _ := runController(t, c.ControllerConfig(t), controller.ManagerConfig{
		Manager:    ctrl.Options{Scheme: scheme, Logger: funcr.New(logs.add, funcr.Options{})},
		InstanceID: instance,
		TargetPoll: 2 * time.Second,
		Options:    controller.Options{Workers: 1},
		Routers:    routers.All(),
	}, append(controller.SluiceKinds(), gvk))
	// Runs before the controller stops: its Canaries need it to go.
	t.Cleanup(func() { deleteCanaries(t, cl, ns, instance) })

	testenv.Eventually(t, 30*time.Second, "readiness names the Widget", func(ctx context.Context) error {
		code, body, err := probe(ctx, addr, "/readyz/kinds")
		if err != nil {
			return err
		}
		if code != http.StatusInternalServerError || !strings.Contains(body, wantMissing) {
			return fmt.Errorf("/readyz/kinds: %d %q", code, body)
		}
		return nil
	})
	for _, path := range []string{"/readyz", "/healthz"} {
		code, body, err := probe(t.Context(), addr, path)
		if want := map[string]int{"/readyz": 500, "/healthz": 200}[path]; err != nil || code != want {
			t.Fatalf("%s while waiting: %d %q (%v), want %d", path, code, body, err, want)
		}
	}
	got := logs.with(wantMissing)
	if len(got) == 0 || !strings.Contains(got[0], "Waiting for the apiserver to serve these kinds") {
		t.Fatalf("no log line names the kind waited for: %q", got)
	}
	t.Logf("logged: %s", got[0])

	ext := extClient(t, c)
	if err := ext.Create(t.Context(), widgets); err != nil {
		t.Fatalf("create CRD %s: %v", widgets.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ext.Delete(ctx, widgets); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete CRD %s: %v", widgets.Name, err)
		}
	})
	testenv.Eventually(t, 60*time.Second, "ready once the Widget is served", func(ctx context.Context) error {
		code, body, err := probe(ctx, addr, "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %q", code, body)
		}
		return nil
	})
	// Ready implies Established and served.
	var crd apiextensionsv1.CustomResourceDefinition
	if err := ext.Get(t.Context(), client.ObjectKeyFromObject(widgets), &crd); err != nil {
		t.Fatal(err)
	}
	if !established(&crd) {
		t.Errorf("ready while the Widget CRD is not Established: %+v", crd.Status.Conditions)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := dc.ServerResourcesForGroupVersion(gvk.GroupVersion().String()); err != nil || len(list.APIResources) == 0 {
		t.Errorf("ready while %s is not served: %v", gvk.GroupVersion(), err)
	}
	if got := logs.with("Kinds served"); len(got) != 1 {
		t.Errorf("logged the end of the wait %d times, want once", len(got))
	}

	// The controllers run: a Canary of this instance is reconciled.
	cn := canary(ns, "nothing-here", weightStep(50))
	cn.Labels[controller.InstanceLabel] = instance
	create(t, cl, cn)
	testenv.Eventually(t, 30*time.Second, "the Canary reconciled", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, cn.Name)
		if err != nil {
			return err
		}
		if got.Status.Reason != v1alpha1.ReasonTargetNotFound {
			return fmt.Errorf("phase %q reason %q", got.Status.Phase, got.Status.Reason)
		}
		return nil
	})
}

// Stopped while it waits, Run returns nil and its probes stop.
func TestRunStopsWhileWaiting(t *testing.T) {
	c := testenv.Get(t)
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	gvk := schema.GroupVersionKind{Group: "startup-" + randomSuffix(t) + ".test.sluice.dev", Version: "v1", Kind: "Widget"}
	addr, stop := runController(t, c.ControllerConfig(t), controller.ManagerConfig{
		Manager:    ctrl.Options{Scheme: scheme, Logger: funcr.New((&lines{}).add, funcr.Options{})},
		InstanceID: "startup-never",
		Routers:    routers.All(),
	}, append(controller.SluiceKinds(), gvk))
	testenv.Eventually(t, 30*time.Second, "the controller waits", func(ctx context.Context) error {
		code, body, err := probe(ctx, addr, "/readyz/kinds")
		if err != nil || code != http.StatusInternalServerError || !strings.Contains(body, "Widget.v1."+gvk.Group) {
			return fmt.Errorf("/readyz/kinds: %d %q (%v)", code, body, err)
		}
		return nil
	})
	if err := stop(30 * time.Second); err != nil {
		t.Fatalf("Run stopped while waiting: %v, want nil", err)
	}
	if _, _, err := probe(t.Context(), addr, "/healthz"); err == nil {
		t.Error("probes still served after Run returned")
	}
}

// runController runs controller.Run with cfg, mc and kinds, its probes on a
// free local port, until the test ends (or stop is called: it cancels
// Run's context and returns Run's error, failing the test if Run has not
// returned within timeout). It returns the probes' address.
func runController(t *testing.T, cfg *rest.Config, mc controller.ManagerConfig, kinds []schema.GroupVersionKind) (addr string, stop func(timeout time.Duration) error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	mc.Manager.HealthProbeBindAddress = addr
	mc.Manager.Metrics = metricsserver.Options{BindAddress: "0"}
	mc.Manager.GracefulShutdownTimeout = ptr.To(10 * time.Second)
	mc.Manager.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, cfg, mc, kinds) }()
	var once sync.Once
	var result error
	stop = func(timeout time.Duration) error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(timeout):
				result = fmt.Errorf("Run did not return within %s of its context's end", timeout)
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(30 * time.Second); err != nil {
			t.Errorf("controller %s: %v", mc.InstanceID, err)
		}
	})
	return addr, stop
}

// probe GETs path from the probes at addr.
func probe(ctx context.Context, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// newWidgetCRD is a namespaced CRD of a group made for this test (not
// created yet).
func newWidgetCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	group := "startup-" + randomSuffix(t) + ".test.sluice.dev"
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	return slices.ContainsFunc(crd.Status.Conditions, func(c apiextensionsv1.CustomResourceDefinitionCondition) bool {
		return c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
	})
}

func extClient(t *testing.T, c *testenv.Cluster) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// lines collects a funcr logger's lines.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, prefix+" "+args)
}

// with returns the lines that contain s.
func (l *lines) with(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.all {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
