package convert

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/lint"
)

// markWant is a report entry a conversion must make: the disposition of
// a source path (of the object whose reference starts with object), and
// a piece of its note.
type markWant struct {
	object, path string
	disp         Disposition
	note         string
}

// providerCase is sources in, and what must come out: each MetricTemplate
// by name with its spec, the Canary's checks and webhooks by name, the
// report entries.
type providerCase struct {
	name      string
	in        string
	templates map[string]string // name -> spec, YAML
	checks    map[string]string // name -> Canary spec.analysis.metrics[] entry, YAML
	hooks     []string          // names of the Canary's webhooks
	marks     []markWant
}

func flaggerTemplate(name, spec string) string {
	return "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: " + name + "\n  namespace: shop\nspec:\n" + indent(spec, "  ")
}

// argoWith is a Rollout whose analysis uses AnalysisTemplate t, with the
// metrics given, and further documents.
func argoWith(metrics string, more ...string) string {
	docs := []string{`apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api, namespace: shop}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  strategy:
    canary:
      trafficRouting:
        traefik: {weightedTraefikServiceName: api}
      analysis:
        templates: [{templateName: t}]
        args: [{name: service, value: api}]
      steps: [{setWeight: 20}, {pause: {duration: 1m}}]`,
		"apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t, namespace: shop}\nspec:\n  args: [{name: service}]\n  metrics:\n" + indent(metrics, "  "),
	}
	return strings.Join(append(docs, more...), "\n---\n")
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

const argoController = `apiVersion: apps/v1
kind: Deployment
metadata: {name: argo-rollouts, namespace: argo-rollouts}
spec:
  template:
    spec:
      containers:
      - name: controller
        image: quay.io/argoproj/argo-rollouts:v1.10.1
        env: [{name: AWS_REGION, value: us-east-2}]`

var providerCases = []providerCase{
	// Flagger.
	{
		name: "flagger datadog",
		in: flaggerTemplate("dd", `provider:
  type: datadog
  address: https://api.datadoghq.eu
  secretRef: {name: datadog}
query: avg:latency{service:{{ variables.service }}}`),
		templates: map[string]string{"dd": `
provider: {type: datadog, address: https://api.datadoghq.eu, secretRef: {name: datadog}, datadog: {apiVersion: v1}}
query: avg:latency{service:{{ .service }}}`},
		marks: []markWant{
			{"MetricTemplate shop/dd", "spec.provider.address", Carried, ""},
			{"MetricTemplate shop/dd", "spec.provider.secretRef", Carried, ""},
			{"MetricTemplate shop/dd", "spec.query", Translated, "oldest point"},
			{"MetricTemplate shop/dd", "spec.query", Translated, "apiVersion v1"},
		},
	},
	{
		name: "flagger datadog without a Secret",
		in:   flaggerTemplate("dd", "provider: {type: datadog}\nquery: avg:latency{*}"),
		marks: []markWant{
			{"MetricTemplate shop/dd", "spec", NotCarried, "without a secretRef"},
		},
	},
	{
		name: "flagger newrelic",
		in: flaggerTemplate("nr", `provider:
  type: newrelic
  secretRef: {name: nr}
query: SELECT count(*) FROM TransactionError WHERE appName = '{{ target }}'`),
		templates: map[string]string{"nr": `
provider: {type: newrelic, secretRef: {name: nr}}
query: SELECT count(*) FROM TransactionError WHERE appName = '{{ target }}'`},
		marks: []markWant{
			{"MetricTemplate shop/nr", "spec.provider.secretRef", Translated, "api-key holding a user key"},
			{"MetricTemplate shop/nr", "spec.provider.secretRef", Translated, "account-id"},
			{"MetricTemplate shop/nr", "spec.query", Carried, ""},
		},
	},
	{
		name: "flagger newrelic in the EU",
		in: flaggerTemplate("nr", `provider:
  type: newrelic
  address: https://insights-api.eu.newrelic.com
  secretRef: {name: nr}
query: SELECT average(duration) FROM Transaction SINCE 5 minutes ago`),
		templates: map[string]string{"nr": `
provider: {type: newrelic, secretRef: {name: nr}, newRelic: {region: EU}}
query: SELECT average(duration) FROM Transaction SINCE 5 minutes ago`},
		marks: []markWant{
			{"MetricTemplate shop/nr", "spec.provider.address", Translated, "EU region"},
			{"MetricTemplate shop/nr", "spec.query", Translated, "its own SINCE"},
		},
	},
	{
		name: "flagger graphite",
		in: flaggerTemplate("g", `provider:
  type: graphite
  address: http://graphite:8080
  secretRef: {name: graphite}
query: target=sumSeries(app.{{ target }}.5xx.count)&from=-5min`),
		templates: map[string]string{"g": `
provider: {type: graphite, address: "http://graphite:8080", secretRef: {name: graphite}}
query: target=sumSeries(app.{{ target }}.5xx.count)&from=-5min`},
		marks: []markWant{
			{"MetricTemplate shop/g", "spec.provider.address", Carried, ""},
			{"MetricTemplate shop/g", "spec.provider.secretRef", Carried, ""},
			{"MetricTemplate shop/g", "spec.query", Carried, ""},
		},
	},
	{
		name: "flagger graphite without a range",
		in:   flaggerTemplate("g", "provider: {type: graphite, address: 'http://graphite'}\nquery: target=sumSeries(app.5xx.count)"),
		templates: map[string]string{"g": `
provider: {type: graphite, address: "http://graphite"}
query: target=sumSeries(app.5xx.count)`},
		marks: []markWant{{"MetricTemplate shop/g", "spec.query", Translated, "no from"}},
	},
	{
		name: "flagger cloudwatch",
		in: flaggerTemplate("cw", `provider:
  type: cloudwatch
  region: eu-central-1
  secretRef: {name: aws}
query: '[{"Id": "l", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency"}, "Period": 60, "Stat": "Average"}}]'`),
		templates: map[string]string{"cw": `
provider: {type: cloudwatch, cloudWatch: {region: eu-central-1}}
query: '[{"Id": "l", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency"}, "Period": 60, "Stat": "Average"}}]'`},
		marks: []markWant{
			{"MetricTemplate shop/cw", "spec.provider.region", Carried, ""},
			{"MetricTemplate shop/cw", "spec.provider.secretRef", NotCarried, "pod's AWS identity"},
			{"MetricTemplate shop/cw", "spec.query", Translated, "10 metric intervals"},
		},
	},
	{
		name: "flagger influxdb",
		in:   flaggerTemplate("flux", "provider: {type: influxdb, address: 'http://influx:8086', secretRef: {name: influx}}\nquery: from(bucket:\"b\") |> range(start:-1m) |> count()"),
		marks: []markWant{
			{"MetricTemplate shop/flux", "spec", NotCarried, "spec.provider.influxDB: {org: <your org>}"},
			{"MetricTemplate shop/flux", "spec", NotCarried, "token key"},
		},
	},
	{
		name:  "flagger stackdriver",
		in:    flaggerTemplate("sd", "provider: {type: stackdriver}\nquery: fetch k8s_container"),
		marks: []markWant{{"MetricTemplate shop/sd", "spec", NotCarried, "a stackdriver provider: Sluice has none"}},
	},
	{
		name: "flagger prometheus: region and insecureSkipVerify over http",
		in:   flaggerTemplate("p", "provider: {type: prometheus, address: 'http://prom:9090', region: eu-west-1, insecureSkipVerify: true}\nquery: up"),
		templates: map[string]string{"p": `
provider: {type: prometheus, address: "http://prom:9090"}
query: up`},
		marks: []markWant{
			{"MetricTemplate shop/p", "spec.provider.region", NotCarried, "only a cloudwatch provider"},
			{"MetricTemplate shop/p", "spec.provider.insecureSkipVerify", NotCarried, "not https://"},
		},
	},

	// Argo Rollouts.
	{
		name: "argo datadog v2",
		in: argoWith(`- name: errors
  successCondition: default(result, 0) < 0.05
  provider:
    datadog:
      apiVersion: v2
      interval: 10m
      aggregator: max
      requestTimeout: 20
      query: sum:errors{service:{{args.service}}}.as_count()
      secretRef: {name: dd, namespaced: true}`),
		templates: map[string]string{"t-errors": `
provider: {type: datadog, secretRef: {name: dd}, timeout: 20s, datadog: {apiVersion: v2, aggregator: max}}
query: sum:errors{service:{{ .service }}}.as_count()`},
		checks: map[string]string{"errors": `
name: errors
templateRef: {name: t-errors}
interval: 10m0s
successCondition: result < 0.05
templateVariables: {service: api}`},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.interval", Translated, "the query's window"},
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.aggregator", Carried, ""},
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.secretRef", Translated, "namespaced: true"},
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.requestTimeout", Translated, ""},
			{"AnalysisTemplate", "spec.metrics[0].successCondition", Translated, "default(result, x)"},
		},
	},
	{
		name: "argo datadog defaults",
		in: argoWith(`- name: latency
  successCondition: result < 300
  provider:
    datadog:
      query: avg:latency{*}`),
		templates: map[string]string{"t-latency": `
provider: {type: datadog, secretRef: {name: datadog}, datadog: {apiVersion: v1}}
query: avg:latency{*}`},
		checks: map[string]string{"latency": `
name: latency
templateRef: {name: t-latency}
interval: 5m0s
successCondition: result < 300
templateVariables: {service: api}`},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.query", Translated, "names Secret datadog"},
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.query", Translated, "v1, written out"},
			{"AnalysisTemplate", "spec.metrics[0].provider.datadog.query", Translated, "5m"},
			{"AnalysisTemplate", "spec.metrics[0].successCondition", Carried, ""},
		},
	},
	{
		name: "argo datadog formula",
		in: argoWith(`- name: ratio
  successCondition: result < 1
  provider:
    datadog:
      apiVersion: v2
      queries: {a: "sum:errors{*}", b: "sum:requests{*}"}
      formula: a / b`),
		marks: []markWant{{"AnalysisTemplate", "spec.metrics[0]", NotCarried, "a formula over several queries"}},
	},
	{
		name: "argo newrelic",
		in: argoWith(`- name: success
  successCondition: result.rate >= 99
  provider:
    newRelic:
      profile: nr
      timeout: 15
      query: SELECT percentage(count(*), WHERE error IS false) AS rate FROM Transaction WHERE appName = '{{args.service}}' SINCE 5 minutes ago`),
		templates: map[string]string{"t-success": `
provider: {type: newrelic, secretRef: {name: nr}, timeout: 15s}
query: SELECT percentage(count(*), WHERE error IS false) AS rate FROM Transaction WHERE appName = '{{ .service }}' SINCE 5 minutes ago`},
		checks: map[string]string{"success": `
name: success
templateRef: {name: t-success}
successCondition: result >= 99
templateVariables: {service: api}`},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.newRelic.profile", Translated, "api-key holding Argo's personal-api-key"},
			{"AnalysisTemplate", "spec.metrics[0].successCondition", Translated, "result.rate written as result"},
			{"AnalysisTemplate", "spec.metrics[0].provider.newRelic.query", Translated, "{{args.x}}"},
		},
	},
	{
		name: "argo cloudwatch without the controller's region",
		in: argoWith(`- name: cw
  successCondition: result < 1
  provider:
    cloudWatch:
      metricDataQueries: [{id: q, expression: "SUM(METRICS())"}]`),
		marks: []markWant{{"AnalysisTemplate", "spec.metrics[0]", NotCarried, "AWS_REGION"}},
	},
	{
		name: "argo cloudwatch",
		in: argoWith(`- name: cw
  failureCondition: result[0].Values[0] > 5
  provider:
    cloudWatch:
      interval: 10m
      metricDataQueries:
      - id: e
        metricStat:
          metric:
            namespace: AWS/ApplicationELB
            metricName: HTTPCode_Target_5XX_Count
            dimensions: [{name: TargetGroup, value: "{{args.service}}"}]
          period: 60
          stat: Sum`, argoController),
		templates: map[string]string{"t-cw": `
provider: {type: cloudwatch, cloudWatch: {region: us-east-2}}
query: |-
  [
    {
      "Id": "e",
      "MetricStat": {
        "Metric": {
          "Dimensions": [
            {
              "Name": "TargetGroup",
              "Value": "{{ .service }}"
            }
          ],
          "MetricName": "HTTPCode_Target_5XX_Count",
          "Namespace": "AWS/ApplicationELB"
        },
        "Period": 60,
        "Stat": "Sum"
      }
    }
  ]`},
		checks: map[string]string{"cw": `
name: cw
templateRef: {name: t-cw}
interval: 10m0s
failureCondition: result > 5
templateVariables: {service: api}`},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.cloudWatch.metricDataQueries", Translated, "region us-east-2, the region Argo took from its controller's environment (AWS_REGION of Deployment argo-rollouts/argo-rollouts)"},
			{"AnalysisTemplate", "spec.metrics[0].provider.cloudWatch.metricDataQueries", Translated, "as the AWS API spells them"},
			{"AnalysisTemplate", "spec.metrics[0].failureCondition", Translated, "result[0].Values[0] written as result"},
		},
	},
	{
		name: "argo graphite",
		in: argoWith(`- name: g
  successCondition: result < 1
  provider:
    graphite:
      address: http://graphite
      query: target=sumSeries(app.{{args.service}}.5xx.count)&from=-5min`),
		templates: map[string]string{"t-g": `
provider: {type: graphite, address: "http://graphite"}
query: target=sumSeries(app.{{ .service }}.5xx.count)&from=-5min`},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.graphite.address", Carried, ""},
			{"AnalysisTemplate", "spec.metrics[0].provider.graphite.query", Translated, "{{args.x}}"},
		},
	},
	{
		name: "argo influxdb",
		in: argoWith(`- name: flux
  successCondition: result < 1
  provider:
    influxdb: {query: "from(bucket: \"b\") |> range(start: -5m) |> count()"}`),
		marks: []markWant{{"AnalysisTemplate", "spec.metrics[0]", NotCarried, "influxDB: {org: <your org>}"}},
	},
	{
		name: "argo web metric",
		in: argoWith(`- name: score
  successCondition: result >= 0.9
  failureCondition: result < 0.5
  provider:
    web:
      url: https://scores.shop/v1/score?app={{args.service}}
      method: PUT
      headers: [{key: X-Scope, value: shop}]
      jsonBody: {app: "{{args.service}}"}
      jsonPath: "{$.score}"
      timeoutSeconds: 3
      insecure: true`),
		templates: map[string]string{"t-score": `
provider:
  type: web
  address: https://scores.shop
  headers: {X-Scope: shop}
  timeout: 3s
  insecureSkipVerify: true
  web: {method: PUT, body: '{"app":"{{ .service }}"}', jsonPath: "{$.score}"}
query: /v1/score?app={{ .service }}`},
		checks: map[string]string{"score": `
name: score
templateRef: {name: t-score}
successCondition: result >= 0.9
failureCondition: result < 0.5
templateVariables: {service: api}`},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.web.url", Translated, "the scheme and host are the address"},
			{"AnalysisTemplate", "spec.metrics[0].provider.web.jsonBody", Translated, "written as a string"},
			{"AnalysisTemplate", "spec.metrics[0].provider.web.jsonPath", Carried, ""},
			{"AnalysisTemplate", "spec.metrics[0].provider.web.method", Carried, ""},
			{"AnalysisTemplate", "spec.metrics[0].provider.web.headers", Translated, ""},
			{"AnalysisTemplate", "spec.metrics[0].provider.web.timeoutSeconds", Translated, ""},
			{"AnalysisTemplate", "spec.metrics[0].provider.web.insecure", Carried, ""},
			{"AnalysisTemplate", "spec.metrics[0].successCondition", Carried, ""},
		},
	},
	{
		name: "argo web metric without a jsonPath",
		in: argoWith(`- name: smoke
  successCondition: result == "ok"
  provider:
    web: {url: "http://tester.shop/smoke"}`),
		hooks: []string{"smoke"},
		marks: []markWant{
			{"AnalysisTemplate", "spec.metrics[0].provider.web.url", Translated, "no jsonPath"},
			{"AnalysisTemplate", "spec.metrics[0].successCondition", NotCarried, "2xx"},
		},
	},
	{
		name: "argo web metric judging a boolean",
		in: argoWith(`- name: ok
  successCondition: result == true
  provider:
    web: {url: "http://tester.shop/ok", jsonPath: "{.ok}"}`),
		hooks: []string{"ok"},
		marks: []markWant{{"AnalysisTemplate", "spec.metrics[0].provider.web.url", Translated, "mismatched types float64 and bool"}},
	},
	{
		name: "argo condition over something else than a number",
		in: argoWith(`- name: nan
  successCondition: isNaN(result)
  provider:
    datadog: {query: "avg:x{*}"}`),
		marks: []markWant{{"AnalysisTemplate", "spec.metrics[0]", NotCarried, "does not compile over it"}},
	},
}

// TestMetricProviders converts one source per provider and checks the
// MetricTemplates written, the Canary's checks and webhooks, the report
// entries, and that every output passes the CRDs' validation offline.
func TestMetricProviders(t *testing.T) {
	for _, tc := range providerCases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			r := Convert(objs, Options{})
			templates := map[string]*v1alpha1.MetricTemplate{}
			var canary *v1alpha1.Canary
			for _, o := range r.Outputs {
				switch x := o.Object.(type) {
				case *v1alpha1.MetricTemplate:
					templates[x.Name] = x
				case *v1alpha1.Canary:
					canary = x
				}
			}
			if len(templates) != len(tc.templates) {
				t.Errorf("%d MetricTemplates written, want %d", len(templates), len(tc.templates))
			}
			for name, want := range tc.templates {
				mt := templates[name]
				if mt == nil {
					t.Errorf("no MetricTemplate %s written", name)
					continue
				}
				sameYAML(t, "MetricTemplate "+name+" spec", mt.Spec, want)
			}
			if tc.checks != nil || tc.hooks != nil {
				if canary == nil || canary.Spec.Analysis == nil {
					t.Fatal("no Canary with an analysis written")
				}
				if len(canary.Spec.Analysis.Metrics) != len(tc.checks) {
					t.Errorf("%d checks, want %d", len(canary.Spec.Analysis.Metrics), len(tc.checks))
				}
				for _, m := range canary.Spec.Analysis.Metrics {
					if want, ok := tc.checks[m.Name]; ok {
						sameYAML(t, "check "+m.Name, m, want)
					} else {
						t.Errorf("unexpected check %s", m.Name)
					}
				}
				var hooks []string
				for _, h := range canary.Spec.Analysis.Webhooks {
					hooks = append(hooks, h.Name)
				}
				if !reflect.DeepEqual(hooks, tc.hooks) {
					t.Errorf("webhooks %v, want %v", hooks, tc.hooks)
				}
			}
			for _, w := range tc.marks {
				if !hasMark(r.Report, w) {
					var rep bytes.Buffer
					r.Report.Write(&rep, true)
					t.Errorf("no entry %s %s %s with a note containing %q; the report:\n%s", w.object, w.path, w.disp, w.note, rep.String())
				}
			}
			for _, f := range lintOutputs(t, r) {
				t.Errorf("lint: %s", f)
			}
		})
	}
}

func hasMark(r Report, w markWant) bool {
	for _, e := range r.Entries {
		if strings.HasPrefix(e.Object, w.object) && e.Path == w.path && e.Disposition == w.disp && strings.Contains(e.Note, w.note) {
			return true
		}
	}
	return false
}

// sameYAML compares a value with the YAML it should marshal to.
func sameYAML(t *testing.T, what string, got any, want string) {
	t.Helper()
	b, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := yaml.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: the wanted YAML: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n%s\nwant:\n%s", what, b, strings.TrimSpace(want))
	}
}

var (
	linterOnce sync.Once
	linter     *lint.Linter
	linterErr  error
)

// lintOutputs checks the rendered outputs as `kubectl sluice lint` does
// (the CRDs' schema and CEL rules, compiled offline), returning the
// errors; warnings are for the user to weigh and are not returned.
func lintOutputs(t *testing.T, r Result) []string {
	t.Helper()
	linterOnce.Do(func() { linter, linterErr = lint.New() })
	if linterErr != nil {
		t.Fatal(linterErr)
	}
	var out bytes.Buffer
	if err := Render(&out, r); err != nil {
		t.Fatal(err)
	}
	findings, err := linter.LintBytes(context.Background(), out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, f := range findings {
		if !f.Warning {
			errs = append(errs, f.String())
		}
	}
	return errs
}

// TestOutputsPassTheLinter runs every output of the corpus (the
// hand-over objects too) through the offline linter: the CRDs' schema
// and CEL rules must accept each one, without a cluster.
func TestOutputsPassTheLinter(t *testing.T) {
	n := 0
	for _, file := range corpus(t) {
		r := convertFileWith(t, file, Options{Handover: true})
		for _, f := range lintOutputs(t, r) {
			t.Errorf("%s: %s", file, f)
		}
		n += len(r.Outputs)
	}
	t.Logf("%d outputs linted", n)
}

// TestLinterRefusesWhatTheCRDRefuses guards the two tests above: the
// linter they rely on does refuse MetricTemplates the CRD refuses.
func TestLinterRefusesWhatTheCRDRefuses(t *testing.T) {
	for _, p := range []v1alpha1.MetricProvider{
		{Type: v1alpha1.ProviderDatadog},
		{Type: v1alpha1.ProviderCloudWatch},
		{Type: v1alpha1.ProviderGraphite, Address: "http://graphite", InsecureSkipVerify: true},
		{Type: v1alpha1.ProviderWeb, Address: "http://stats", Web: &v1alpha1.WebProvider{JSONPath: "{.v}", Body: "{}"}},
		{Type: v1alpha1.ProviderInfluxDB, Address: "http://influx:8086"},
	} {
		mt := &v1alpha1.MetricTemplate{Spec: v1alpha1.MetricTemplateSpec{Provider: p, Query: "q"}}
		mt.APIVersion, mt.Kind, mt.Name = v1alpha1.GroupVersion.String(), "MetricTemplate", "m"
		if errs := lintOutputs(t, Result{Outputs: []Output{{Object: mt, From: "test"}}}); len(errs) == 0 {
			t.Errorf("a %s MetricTemplate %+v passes the linter", p.Type, p)
		}
	}
}
