package controller_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/kubeapi"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// dashboardFile is the Grafana dashboard the chart ships.
const dashboardFile = "charts/sluice/files/grafana-dashboard.json"

// perCanaryFamilies are the families with a series per Canary: a panel
// querying one of them must show the test's Canaries.
var perCanaryFamilies = []string{
	"sluice_canary_phase", "sluice_canary_weight_ratio", "sluice_canary_step", "sluice_canary_steps",
	"sluice_canary_failed_checks", "sluice_canary_check_value", "sluice_canary_verification",
	"sluice_releases_total", "sluice_rollbacks_total",
}

// kubeRequests counts the apiserver requests of the controllers this test
// starts, as cmd/sluice counts its own (registered once per process).
var kubeRequests = sync.OnceValues(func() (*kubeapi.Requests, error) {
	r := kubeapi.NewRequests()
	return r, r.Register(metrics.Registry)
})

var grafanaRuns atomic.Int32

// Every query of the Grafana dashboard names metrics a running controller
// exports, and a real Prometheus answers it. A controller built as
// cmd/sluice builds it (its apiserver requests counted, its metrics served
// by controller-runtime's metrics server) runs a release that promotes and
// one that rolls back, both checked against a real Prometheus and both
// announced to a webhook, so that every family the board reads has
// series. The same Prometheus scrapes the controller's endpoint the way
// the chart's ServiceMonitor does (honoring the metrics' own namespace
// label). Then, for each query of each panel and each template variable,
// with Grafana's variables filled in: it parses (MetricsQL, a superset of
// PromQL); each metric it names is a family the endpoint serves and a
// series name Prometheus stored; Prometheus runs it without an error; and
// a query of a per-Canary family shows the test's Canaries.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	start := time.Now()
	c, ns, cl := setup(t)
	board := readDashboard(t)

	requests, err := kubeRequests()
	if err != nil {
		t.Fatalf("register the apiserver request metrics: %v", err)
	}
	cfg := rest.CopyConfig(c.ControllerConfig(t))
	cfg.Wrap(requests.Wrap)
	instance := fmt.Sprintf("grafana-%d-%d", os.Getpid(), grafanaRuns.Add(1))
	endpoint := testenv.StartControllerServingMetrics(t, cfg, controller.ManagerConfig{
		Manager:      ctrl.Options{Scheme: scheme},
		InstanceID:   instance,
		RecorderName: "sluice-grafana-test",
		Metrics:      testMetrics, // registered by setup, once per process
		TargetPoll:   2 * time.Second,
		Options:      controller.Options{Workers: 2},
		Routers:      routers.All(),
	})
	// setup's cleanup deletes the namespace's Canaries while "this
	// process's controller" runs, but that one ignores these; they go
	// while their own controller still runs (cleanups run last first).
	t.Cleanup(func() { deleteCanaries(t, cl, ns, instance) })

	rates := startErrorRates(t)
	prom := testenv.StartPrometheus(t, time.Second, fmt.Sprintf(`- job_name: rates
  static_configs:
  - targets: [%q]
- job_name: sluice
  honor_labels: true
  static_configs:
  - targets: [%q]
    labels: {namespace: sluice-system}
`, rates.addr, strings.TrimPrefix(endpoint, "http://")))

	var posts atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
	}))
	t.Cleanup(hook.Close)

	rates.set("steady", 1)
	rates.set("shaky", 20)
	scraped(t, prom, "steady", 1)
	scraped(t, prom, "shaky", 20)
	mine := func(cn *v1alpha1.Canary) *v1alpha1.Canary {
		cn.Labels[controller.InstanceLabel] = instance
		cn.Spec.Analysis.Alerts = []v1alpha1.Alert{{Name: "release-news", Severity: v1alpha1.SeverityInfo, ProviderRef: v1alpha1.AlertProviderRef{Name: "hook"}}}
		return cn
	}
	create(t, cl,
		errorRateTemplate(ns, prom.URL),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{"address": []byte(hook.URL + "/sluice")}},
		&v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Spec: v1alpha1.AlertProviderSpec{
			Type: v1alpha1.AlertWebhook, SecretRef: corev1.LocalObjectReference{Name: "hook"}}},
		app(ns, "steady", "example.com/steady:1", 1), mine(analysed(ns, "steady", weightStep(20), pauseStep(2*time.Second), weightStep(60))),
		app(ns, "shaky", "example.com/shaky:1", 1), mine(analysed(ns, "shaky", weightStep(20), pauseStep(time.Hour))),
	)
	waitPhase(t, cl, ns, "steady", v1alpha1.PhaseInitialized, 60*time.Second)
	waitPhase(t, cl, ns, "shaky", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "steady", "example.com/steady:2")
	setImage(t, cl, ns, "shaky", "example.com/shaky:2")
	waitPhase(t, cl, ns, "shaky", v1alpha1.PhaseFailed, 90*time.Second)
	waitPhase(t, cl, ns, "steady", v1alpha1.PhaseSucceeded, 90*time.Second)
	// The metrics move once the status that records an end is written,
	// a moment after the phase can be read.
	testenv.Eventually(t, 30*time.Second, "the releases' ends and their notifications counted", func(context.Context) error {
		for name, outcome := range map[string]string{"steady": v1alpha1.OutcomeSucceeded, "shaky": v1alpha1.OutcomeFailed} {
			if v, ok := series(t, "sluice_releases_total", map[string]string{"namespace": ns, "name": name, "outcome": outcome}); !ok || v != 1 {
				return fmt.Errorf("sluice_releases_total of %s/%s %s = %v (present %v)", ns, name, outcome, v, ok)
			}
		}
		if n, _ := served(t, "sluice_notifications_total", "outcome", "sent"); n == 0 || posts.Load() == 0 {
			return fmt.Errorf("%d notifications posted, %d counted as sent", posts.Load(), n)
		}
		return nil
	})
	settled := time.Now()
	testenv.Eventually(t, 30*time.Second, "a scrape of the controller after the releases ended", func(ctx context.Context) error {
		// timestamp() of the selector itself: of an expression it would
		// be the evaluation's time.
		at, err := prom.Query(ctx, `timestamp(up{job="sluice"})`)
		if err != nil {
			return err
		}
		up, err := prom.Query(ctx, `up{job="sluice"}`)
		if err != nil {
			return err
		}
		if len(at) != 1 || len(up) != 1 || up[0].Value != 1 || at[0].Value < float64(settled.UnixMilli())/1000 {
			return fmt.Errorf("last scrape at %v, up %v; want a good one after %s", at, up, settled.Format(time.RFC3339Nano))
		}
		return nil
	})

	families := scrapeFamilies(t, endpoint+"/metrics")
	stored := labelValues(t, prom, "__name__", "")
	vars := map[string]string{
		"datasource": "prometheus", "job": "sluice", "namespace": regexp.QuoteMeta(ns), "canary": "(steady|shaky)",
		// The time range and intervals Grafana would fill in (a 1 h range
		// reaches back before this Prometheus started).
		"__range": "1h", "__interval": "15s", "__rate_interval": "1m",
	}
	used := map[string]bool{}
	checked := 0
	for _, q := range boardQueries(board) {
		what := fmt.Sprintf("%s %q (query %s)", q.kind, q.title, q.ref)
		expr, err := substitute(q.expr, vars)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		selector, label := expr, ""
		if q.kind == "variable" {
			if selector, label, err = labelValuesQuery(expr); err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
		}
		names, err := metricNames(selector)
		if err != nil {
			t.Errorf("%s: does not parse: %v\n%s", what, err, expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s names no metric: %s", what, expr)
		}
		perCanary := false
		for _, n := range names {
			family, ok := familyOf(n, families)
			if !ok {
				t.Errorf("%s: metric %s is not served by the controller's /metrics", what, n)
			} else if !stored[n] {
				t.Errorf("%s: metric %s is served but Prometheus stored no series of it", what, n)
			}
			used[family] = true
			perCanary = perCanary || slices.Contains(perCanaryFamilies, family)
		}
		checked++
		if q.kind == "variable" {
			values := labelValues(t, prom, label, selector)
			want := map[string][]string{"job": {"sluice"}, "namespace": {ns}, "canary": {"steady", "shaky"}}[q.title]
			for _, v := range want {
				if !values[v] {
					t.Errorf("%s: %s has no %q among %v", what, label, v, slices.Sorted(maps.Keys(values)))
				}
			}
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		samples, err := prom.Query(ctx, expr)
		cancel()
		switch {
		case err != nil:
			t.Errorf("%s: Prometheus refused it: %v", what, err)
		case perCanary && len(samples) == 0:
			t.Errorf("%s: no series for the test's Canaries:\n%s", what, expr)
		}
		// A release's end counts in the range it ended in, first of its
		// outcome for its Canary though it was (the counter appears at 1).
		if q.title == "Releases ended in the time range" {
			expectValues(t, what, samples, "outcome", map[string]float64{v1alpha1.OutcomeSucceeded: 1, v1alpha1.OutcomeFailed: 1})
		}
		if q.title == "Rollbacks in the time range, by reason" {
			expectValues(t, what, samples, "reason", map[string]float64{"AnalysisFailed": 1})
		}
	}
	// The same panel over a range that starts after the releases ended
	// counts none: the counters' growth, not their value.
	found := false
	for _, q := range boardQueries(board) {
		if q.title != "Releases ended in the time range" {
			continue
		}
		found = true
		short := maps.Clone(vars)
		short["__range"] = "2s"
		expr, err := substitute(q.expr, short)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "no release ended in the last 2 s", func(ctx context.Context) error {
			s, err := prom.Query(ctx, expr)
			if err != nil {
				return err
			}
			if len(s) == 0 {
				return fmt.Errorf("no series")
			}
			for _, x := range s {
				if x.Value != 0 {
					return fmt.Errorf("%s=%q counts %v", "outcome", x.Metric["outcome"], x.Value)
				}
			}
			return nil
		})
	}
	if !found {
		t.Errorf(`no panel "Releases ended in the time range"`)
	}
	if checked < 20 {
		t.Errorf("checked %d queries; the board should have more", checked)
	}
	t.Logf("checked %d queries over %d families in %s: %s", checked, len(used), time.Since(start).Round(time.Second),
		strings.Join(slices.Sorted(maps.Keys(used)), ", "))
}

// The board is a classic dashboard model Grafana imports as it is: JSON
// indented by two spaces, uid sluice, schema version 39, every panel and
// query on the data source the datasource variable picks, the namespace
// and canary variables as documented, panels with their own ids and
// places that do not overlap.
func TestGrafanaDashboardModel(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	if indented.String()+"\n" != string(raw) {
		t.Errorf("%s is not indented by two spaces (as json.Indent does, with a final newline)", dashboardFile)
	}
	var d struct {
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []json.RawMessage
		Templating    struct {
			List []struct {
				Name, Type string
				Datasource *datasourceRef
				Query      json.RawMessage
				Multi      bool
				IncludeAll bool
			}
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "sluice" || d.SchemaVersion != 39 {
		t.Errorf("uid %q, schemaVersion %d; want sluice, 39", d.UID, d.SchemaVersion)
	}
	want := datasourceRef{Type: "prometheus", UID: "${datasource}"}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		switch {
		case v.Name == "datasource":
			var q string
			if v.Type != "datasource" || json.Unmarshal(v.Query, &q) != nil || q != "prometheus" {
				t.Errorf("variable datasource: type %s, query %s; want a datasource variable of Prometheus data sources", v.Type, v.Query)
			}
		case v.Type == "query":
			if v.Datasource == nil || *v.Datasource != want || !v.Multi || !v.IncludeAll {
				t.Errorf("variable %s: datasource %v, multi %v, includeAll %v; want %v, multi, All", v.Name, v.Datasource, v.Multi, v.IncludeAll, want)
			}
		}
	}
	for _, q := range boardQueries(readDashboard(t)) {
		if q.kind == "variable" {
			vars[q.title] = q.expr
		}
	}
	if vars["namespace"] != "label_values(sluice_canary_phase, namespace)" ||
		vars["canary"] != `label_values(sluice_canary_phase{namespace=~"$namespace"}, name)` {
		t.Errorf("variables namespace %q, canary %q", vars["namespace"], vars["canary"])
	}

	type panel struct {
		ID         int
		Type       string
		Title      string
		Datasource *datasourceRef
		GridPos    struct{ X, Y, W, H int }
		Targets    []struct {
			Datasource *datasourceRef
			Expr       string
		}
		Panels []json.RawMessage
	}
	ids := map[int]string{}
	var placed []panel
	var walk func([]json.RawMessage)
	walk = func(raws []json.RawMessage) {
		for _, r := range raws {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			if other, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && (p.Datasource == nil || *p.Datasource != want || len(p.Targets) == 0) {
				t.Errorf("panel %q: datasource %v, %d queries; want %v", p.Title, p.Datasource, len(p.Targets), want)
			}
			for i, tg := range p.Targets {
				if tg.Datasource == nil || *tg.Datasource != want || tg.Expr == "" {
					t.Errorf("panel %q, query %d: datasource %v, expr %q", p.Title, i, tg.Datasource, tg.Expr)
				}
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, g)
			}
			for _, o := range placed {
				h := o.GridPos
				if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("panels %q and %q overlap", p.Title, o.Title)
				}
			}
			placed = append(placed, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboardQuery is one query of the board: a panel target's expression
// or a template variable's query.
type dashboardQuery struct {
	kind, title, ref, expr string
}

type dashboardPanel struct {
	Type    string           `json:"type"`
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

type dashboard struct {
	UID        string           `json:"uid"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// boardQueries lists every target of every panel (those of rows, collapsed
// or not, included) and every query variable.
func boardQueries(d *dashboard) []dashboardQuery {
	var out []dashboardQuery
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, dashboardQuery{"panel", p.Title, tg.RefID, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// A string, or the Prometheus query editor's object.
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct{ Query string }
			_ = json.Unmarshal(v.Query, &obj)
			q = obj.Query
		}
		out = append(out, dashboardQuery{"variable", v.Name, "-", q})
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// substitute fills in Grafana's variables ($x, ${x}, ${x:fmt}, [[x]]); an
// unknown one is an error.
func substitute(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %v in %s", missing, expr)
	}
	return out, nil
}

var labelValuesCall = regexp.MustCompile(`^\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// labelValuesQuery splits Grafana's label_values(selector, label).
func labelValuesQuery(q string) (selector, label string, err error) {
	m := labelValuesCall.FindStringSubmatch(q)
	if m == nil {
		return "", "", fmt.Errorf("not label_values(selector, label): %s", q)
	}
	return m[1], m[2], nil
}

// metricNames parses a query and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	e, err := metricsql.Parse(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		me, ok := x.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, lfs := range me.LabelFilterss {
			for _, lf := range lfs {
				if lf.Label == "__name__" {
					seen[lf.Value] = true
				}
			}
		}
	})
	return slices.Sorted(maps.Keys(seen)), nil
}

// familyOf maps a series name to the family that serves it: itself, or a
// histogram's (or summary's) _bucket, _sum and _count.
func familyOf(name string, families map[string]string) (string, bool) {
	if _, ok := families[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch families[base] {
		case "histogram":
			return base, true
		case "summary":
			return base, suffix != "_bucket"
		}
	}
	return name, false
}

// scrapeFamilies reads the controller's metrics endpoint as Prometheus
// does (the text format) and returns each family's type by its name.
func scrapeFamilies(t *testing.T, u string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", u, resp.Status)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	if len(out) == 0 {
		t.Fatalf("scrape %s: no metric families", u)
	}
	return out
}

// labelValues asks Prometheus for a label's values, of the series matching
// match when it is not empty: what Grafana's label_values asks.
func labelValues(t *testing.T, prom *testenv.Prometheus, label, match string) map[string]bool {
	t.Helper()
	u := prom.URL + "/api/v1/label/" + url.PathEscape(label) + "/values"
	if match != "" {
		u += "?" + url.Values{"match[]": {match}}.Encode()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("label values of %s: %v", label, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("label values of %s (match %s): %v %s", label, match, err, body.Error)
	}
	out := map[string]bool{}
	for _, v := range body.Data {
		out[v] = true
	}
	return out
}

// expectValues checks an answer's value per value of label.
func expectValues(t *testing.T, what string, samples []testenv.Sample, label string, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	for _, s := range samples {
		got[s.Metric[label]] = s.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q is %v, want %v (answer %v)", what, label, k, got[k], v, got)
		}
	}
}
