package kubeapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, path           string
		verb, resource, subres string
	}{
		{"GET", "/api/v1/namespaces/ns/services/web", "get", "services", ""},
		{"GET", "/api/v1/namespaces/ns/services", "list", "services", ""},
		{"GET", "/api/v1/services?watch=true&resourceVersion=5", "watch", "services", ""},
		{"GET", "/apis/apps/v1/namespaces/ns/deployments?labelSelector=a&watch=1", "watch", "deployments.apps", ""},
		{"PUT", "/apis/sluice.dev/v1alpha1/namespaces/ns/canaries/web/status", "update", "canaries.sluice.dev", "status"},
		{"PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/web", "patch", "httproutes.gateway.networking.k8s.io", ""},
		{"POST", "/api/v1/namespaces/ns/events", "create", "events", ""},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments/web", "delete", "deployments.apps", ""},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments", "deletecollection", "deployments.apps", ""},
		{"GET", "/api/v1/namespaces/ns", "get", "namespaces", ""},
		{"GET", "/api/v1/namespaces", "list", "namespaces", ""},
		{"PUT", "/api/v1/namespaces/ns/finalize", "update", "namespaces", "finalize"},
		{"GET", "/apis/apps/v1/namespaces/ns/deployments/web/scale", "get", "deployments.apps", "scale"},
		{"GET", "/apis/apps/v1", "get", "-", ""},
		{"GET", "/version", "get", "-", ""},
	} {
		u, err := url.Parse(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		verb, res, sub := Classify(tc.method, u)
		if verb != tc.verb || res != tc.resource || sub != tc.subres {
			t.Errorf("%s %s = %s %s %q, want %s %s %q", tc.method, tc.path, verb, res, sub, tc.verb, tc.resource, tc.subres)
		}
	}
}

// Requests through the wrapped transport are counted by verb and
// resource, and still reach the server.
func TestWrapCounts(t *testing.T) {
	var served int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	defer srv.Close()
	reqs := NewRequests()
	reg := prometheus.NewRegistry()
	if err := reqs.Register(reg); err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Transport: reqs.Wrap(http.DefaultTransport)}
	for _, p := range []string{"/api/v1/namespaces/a/pods/x", "/api/v1/namespaces/b/pods/y", "/api/v1/namespaces/a/pods"} {
		resp, err := cl.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if served != 3 {
		t.Errorf("server saw %d requests, want 3", served)
	}
	if got := testutil.ToFloat64(reqs.vec.WithLabelValues("get", "pods", "")); got != 2 {
		t.Errorf("gets of pods = %v, want 2", got)
	}
	if got := testutil.ToFloat64(reqs.vec.WithLabelValues("list", "pods", "")); got != 1 {
		t.Errorf("lists of pods = %v, want 1", got)
	}
	// Every request but a watch is timed, by verb.
	timed := map[string]uint64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_kube_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			timed[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	if timed["get"] != 2 || timed["list"] != 1 || len(timed) != 2 {
		t.Errorf("timed requests by verb = %v, want get 2, list 1", timed)
	}
}

// A watch is counted but not timed: it lasts as long as it is open.
func TestWatchNotTimed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	reqs := NewRequests()
	cl := &http.Client{Transport: reqs.Wrap(http.DefaultTransport)}
	resp, err := cl.Get(srv.URL + "/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := testutil.ToFloat64(reqs.vec.WithLabelValues("watch", "pods", "")); got != 1 {
		t.Errorf("watches of pods = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(reqs.dur); n != 0 {
		t.Errorf("%d duration series after a watch alone, want none", n)
	}
}
