package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
)

// Where the fields of an AnalysisTemplate's metric go: the MetricTemplate
// written for it and the Canary's check against that template.
const (
	argoTo  = "MetricTemplate <template>-<metric>"
	argoChk = "Canary spec.analysis.metrics[]"
)

// argoDefaultWindow is the window Argo's datadog and cloudWatch
// providers query when their interval is unset.
const argoDefaultWindow = 5 * time.Minute

// argoMetric is what one metric of an AnalysisTemplate becomes in a
// Canary that uses it.
type argoMetric struct {
	check     *v1alpha1.MetricCheck
	hook      *v1alpha1.Webhook
	template  *v1alpha1.MetricTemplate
	threshold int32
	interval  *metav1.Duration
}

// argoMetrics converts the metrics of an AnalysisTemplate (untracked: the
// template's own conversion reports its fields).
func argoMetrics(templateName string, tmpl map[string]any, in input) []argoMetric {
	t := newTracker("", tmpl)
	var out []argoMetric
	for _, m := range t.at("spec").get("metrics").items() {
		if am, ok := argoMetricOf(templateName, m, in); ok {
			out = append(out, am)
		}
	}
	return out
}

// argoAnalysisTemplate reports the fields of an AnalysisTemplate or
// ClusterAnalysisTemplate; what they become is written with the Rollouts
// that use them.
func argoAnalysisTemplate(t *tracker, in input) {
	spec := t.at("spec")
	name, _ := nameOf(t.root)
	for _, a := range spec.get("args").items() {
		a.get("name").translate(argoChk+".templateVariables", "{{args.x}} in a query is written {{ .x }}; the value comes from the Rollout's args")
		a.get("value").translate(argoChk+".templateVariables", "a default value: Sluice takes the Rollout's args only; give every value there")
		a.get("valueFrom").drop("a value from a Secret or a field: Sluice's template variables are values")
	}
	spec.get("dryRun").drop("Sluice has no dry-run metrics; every check counts")
	spec.get("measurementRetention").drop("Sluice keeps the last round's results in status.metrics")
	spec.get("templates").drop("nested templates: list each template in the Rollout instead")
	for _, m := range spec.get("metrics").items() {
		argoMetricOf(name, m, in)
	}
}

// argoProviders are the metric providers Sluice has, as Argo names them.
var argoProviders = []string{"prometheus", "datadog", "newRelic", "cloudWatch", "graphite", "web", "influxdb"}

// argoMetricOf converts one metric of the template templateName, marking
// its fields on m's tracker; ok is false when the metric is not carried.
func argoMetricOf(templateName string, m node, in input) (am argoMetric, ok bool) {
	name := m.get("name").carry(argoChk + ".name").str()
	if fl, ok := m.get("failureLimit").int(); ok && fl >= 0 {
		am.threshold = int32(fl + 1)
	}
	am.interval, _ = duration(m.get("interval"))
	p := m.get("provider")
	kind := ""
	if keys := p.keys(); len(keys) > 0 {
		kind = keys[0]
		for _, k := range keys {
			if slices.Contains(argoProviders, k) {
				kind = k
				break
			}
		}
	}
	conds := argoConditions(kind, m)
	var q argoQuery
	var why string
	switch pk := p.get(kind); kind {
	case "prometheus":
		q, why = argoPrometheus(pk)
	case "datadog":
		q, why = argoDatadog(pk)
	case "newRelic":
		q, why = argoNewRelic(pk)
	case "cloudWatch":
		q, why = argoCloudWatch(pk, in)
	case "graphite":
		q, why = argoGraphite(pk)
	case "web":
		if why := argoWebProblem(pk, conds); why != "" {
			am.hook = argoWebhook(pk, m, why)
			argoRoundMarks(m)
			return am, true
		}
		q = argoWeb(pk)
	case "influxdb":
		why = "an InfluxDB metric: Argo read the organisation, the address and the token from its Secret (profile, default influxdb: keys org, address, authToken), which convert does not see, and Sluice needs the org and the address in the template: write a MetricTemplate by hand (type influxdb, the address, influxDB: {org: <your org>}, this Flux query with {{args.x}} written {{ .x }}, and a secretRef to a Secret in its namespace with key token holding the authToken) and a check against it"
	case "job":
		why = "a Job metric: Sluice runs no Jobs as checks; a rollout webhook can call a service that runs the test"
	case "kayenta":
		why = "a Kayenta judgement: Sluice has no canary judge; write the comparison as a query of a provider Sluice has"
	case "plugin":
		why = "a metric plugin: Sluice has no metric plugins"
	case "":
		why = "no provider"
	default:
		why = fmt.Sprintf("a %s metric: Sluice has no %s provider (it queries Prometheus, Datadog, New Relic, CloudWatch, Graphite and InfluxDB, and any JSON endpoint with the web provider)", kind, kind)
	}
	switch {
	case why != "":
		m.drop(why)
		return am, false
	case !conds.set():
		m.drop("no successCondition or failureCondition: nothing could fail the check, so it is not carried")
		return am, false
	case conds.bad != "":
		m.drop(conds.bad + ": Sluice judges one number, result, and the condition does not compile over it: write it over result and convert again")
		return am, false
	}
	conds.mark(m)
	argoRoundMarks(m)
	mtName := templateName + "-" + name
	am.check = &v1alpha1.MetricCheck{Name: name, TemplateRef: &v1alpha1.TemplateRef{Name: mtName},
		SuccessCondition: conds.succ, FailureCondition: conds.fail, Interval: q.window}
	mt := &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: mtName}}
	mt.APIVersion, mt.Kind = v1alpha1.GroupVersion.String(), "MetricTemplate"
	mt.Spec = v1alpha1.MetricTemplateSpec{Provider: q.provider, Query: q.query}
	am.template = mt
	return am, true
}

// argoRoundMarks reports the fields of a metric about its rounds.
func argoRoundMarks(m node) {
	m.get("interval").translate("Canary spec.analysis.interval", "the time between check rounds (the first metric's)")
	m.get("failureLimit").translate("Canary spec.analysis.threshold", "failureLimit + 1 failed rounds roll back (the lowest of the metrics')")
	m.get("count").drop("Sluice checks every round until the steps end, not a fixed count")
	m.get("initialDelay").drop("Sluice checks from the start of each step; add a pause step before the weight")
	m.get("inconclusiveLimit").drop("Sluice has no inconclusive results")
	m.get("consecutiveErrorLimit").drop("a query error fails the round in Sluice, counted toward the threshold")
	m.get("consecutiveSuccessLimit").drop("Sluice counts failed rounds only")
}

// argoQuery is a metric's MetricTemplate provider and query, and the
// window of the check against it when the source sets one.
type argoQuery struct {
	provider v1alpha1.MetricProvider
	query    string
	window   *metav1.Duration
}

var argoArgs = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// argoArgsRewrite writes Argo's {{args.x}} as Sluice's {{ .x }}.
func argoArgsRewrite(s string) (string, bool) {
	out := argoArgs.ReplaceAllStringFunc(s, func(m string) string {
		return variableRef(argoArgs.FindStringSubmatch(m)[1])
	})
	return out, out != s
}

// markNotes marks n carried to `to`, or translated when there are notes.
func markNotes(n node, to string, notes ...string) {
	notes = slices.DeleteFunc(notes, func(s string) bool { return s == "" })
	if len(notes) == 0 {
		n.carry(to)
		return
	}
	n.translate(to, strings.Join(notes, "; "))
}

// argsNote is the note of a field whose {{args.x}} were rewritten.
func argsNote(changed bool) string {
	if changed {
		return "{{args.x}} written as {{ .x }}"
	}
	return ""
}

// argoHeaders converts a key/value list of headers into a map.
func argoHeaders(h node) map[string]string {
	var out map[string]string
	for _, kv := range h.items() {
		if out == nil {
			out = map[string]string{}
		}
		out[kv.get("key").str()] = kv.get("value").str()
	}
	h.translate(argoTo+" spec.provider.headers", "a key/value list written as a map")
	return out
}

// argoInsecure converts an insecure flag for the address addr.
func argoInsecure(n node, addr string) bool {
	switch {
	case !n.ok:
		return false
	case !n.bool():
		n.carry(argoTo + " spec.provider.insecureSkipVerify")
		return false
	case !strings.HasPrefix(addr, "https://"):
		n.drop("the address is not https://: there is no certificate to verify (Sluice refuses the setting there)")
		return false
	}
	n.carry(argoTo + " spec.provider.insecureSkipVerify")
	return true
}

// argoWindow is the check's window for a provider with its own interval
// (Argo's default 5m when unset), and a note when the default was used.
func argoWindow(iv node) (*metav1.Duration, string) {
	if w, ok := duration(iv); ok {
		iv.translate(argoChk+".interval", "the query's window: the check's interval")
		return w, ""
	}
	return &metav1.Duration{Duration: argoDefaultWindow}, "Argo's default window, 5m, written out as the check's interval"
}

func argoPrometheus(pr node) (argoQuery, string) {
	addr := pr.get("address").carry(argoTo + " spec.provider.address").str()
	if addr == "" {
		return argoQuery{}, "a prometheus metric without an address"
	}
	q := argoQuery{provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderPrometheus, Address: addr}}
	q.provider.Timeout = seconds(pr.get("timeout"))
	pr.get("timeout").translate(argoTo+" spec.provider.timeout", "seconds written as a duration")
	q.provider.Headers = argoHeaders(pr.get("headers"))
	q.provider.InsecureSkipVerify = argoInsecure(pr.get("insecure"), addr)
	query, changed := argoArgsRewrite(pr.get("query").str())
	q.query = query
	markNotes(pr.get("query"), argoTo+" spec.query", argsNote(changed))
	pr.get("authentication").drop("SigV4 and OAuth2: Sluice's Prometheus provider takes a bearer token or basic auth from spec.provider.secretRef")
	pr.get("rangeQuery").drop("Sluice runs instant queries; write the range into the query")
	return q, ""
}

func argoDatadog(d node) (argoQuery, string) {
	dd := &v1alpha1.DatadogProvider{}
	q := argoQuery{provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderDatadog, Datadog: dd}}
	query, queries, formula := d.get("query"), d.get("queries"), d.get("formula")
	var notes []string
	var qn node
	switch keys := queries.keys(); {
	case query.ok && queries.ok:
		return q, "both query and queries: keep one and convert again"
	case query.ok:
		qn = query
		formula.drop("a formula over queries, which this metric does not have (it has query)")
	case queries.ok && d.get("apiVersion").str() != "v2":
		return q, "queries and formula are read with apiVersion v2 only (Argo's default is v1, which sends query): set apiVersion v2 or a query and convert again"
	case len(keys) == 1 && (!formula.ok || strings.TrimSpace(formula.str()) == keys[0]):
		qn = queries.get(keys[0])
		notes = append(notes, "the one query of queries")
		formula.translate(argoTo+" spec.query", "the formula is the one query")
	case queries.ok:
		return q, "a formula over several queries: Sluice sends one metric query; write the arithmetic into one query (Datadog's metric query syntax has it) and convert again"
	default:
		return q, "a datadog metric without a query"
	}
	var changed bool
	q.query, changed = argoArgsRewrite(qn.str())
	notes = append(notes, argsNote(changed))

	av := d.get("apiVersion")
	switch av.str() {
	case "":
		dd.APIVersion = "v1"
		notes = append(notes, "Argo's default API, v1, written out (spec.provider.datadog.apiVersion; Sluice's default is v2)")
	case "v1", "v2":
		dd.APIVersion = av.carry(argoTo + " spec.provider.datadog.apiVersion").str()
	default:
		return q, "apiVersion " + av.str() + ": Argo and Sluice know v1 and v2"
	}
	if dd.APIVersion == "v1" {
		notes = append(notes, "with v1 Argo read the last point, Sluice reads the newest non-null one")
		d.get("aggregator").drop("read with apiVersion v2 only, by Argo as by Sluice")
	} else {
		switch agg := d.get("aggregator"); {
		case !agg.ok:
			dd.Aggregator = "last"
			notes = append(notes, "Argo's default aggregator, last, written out (spec.provider.datadog.aggregator; Sluice's default is avg)")
		case agg.str() == "percentile":
			return q, "aggregator percentile: Sluice's datadog provider has no percentile aggregator; query a percentile metric (p95:...) with another aggregator and convert again"
		default:
			dd.Aggregator = agg.carry(argoTo + " spec.provider.datadog.aggregator").str()
		}
	}
	var wnote string
	q.window, wnote = argoWindow(d.get("interval"))
	notes = append(notes, wnote)
	if t, ok := duration(d.get("requestTimeout")); ok {
		q.provider.Timeout = t
		d.get("requestTimeout").translate(argoTo+" spec.provider.timeout", "written as a duration")
	}
	sr := d.get("secretRef")
	secret := sr.get("name").str()
	if secret == "" {
		secret = "datadog"
	}
	q.provider.SecretRef = &corev1.LocalObjectReference{Name: secret}
	const keys = "Sluice reads its keys api-key and app-key as they are, not an address key (set spec.provider.address or spec.provider.datadog.site instead)"
	switch {
	case sr.get("namespaced").bool():
		sr.translate(argoTo+" spec.provider.secretRef", "Secret "+secret+" of the MetricTemplate's namespace (the Canary's), where Argo read it with namespaced: true; "+keys)
	case sr.ok:
		sr.translate(argoTo+" spec.provider.secretRef", "without namespaced: true Argo read its Secret from its own namespace; Sluice reads Secret "+secret+" from the MetricTemplate's namespace (the Canary's): copy it there; "+keys)
	default:
		// No field to report it on: the query's entry says it.
		notes = append(notes, "no secretRef: Argo read Secret datadog of its own namespace (or its DD_API_KEY, DD_APP_KEY and DD_ADDRESS variables), and the MetricTemplate's spec.provider.secretRef names Secret datadog of its namespace (the Canary's): copy it there; "+keys)
	}
	if qn.path != query.path {
		qn = queries
	}
	markNotes(qn, argoTo+" spec.query", notes...)
	return q, ""
}

func argoNewRelic(n node) (argoQuery, string) {
	q := argoQuery{provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderNewRelic}}
	secret := n.get("profile").str()
	if secret == "" {
		secret = "newrelic"
	}
	q.provider.SecretRef = &corev1.LocalObjectReference{Name: secret}
	note := "Argo read Secret " + secret + " from its own namespace; Sluice reads it from the MetricTemplate's namespace (the Canary's): copy it there with key api-key holding Argo's personal-api-key (a user key) and account-id as it is; its region key is not read (set spec.provider.newRelic.region: EU for an EU account), nor base-url-nerdgraph (set spec.provider.address)"
	profile := ""
	if p := n.get("profile"); p.ok {
		p.translate(argoTo+" spec.provider.secretRef", note)
	} else {
		// No field to report it on: the query's entry says it.
		profile = "no profile: spec.provider.secretRef names Secret newrelic; " + note
	}
	query, changed := argoArgsRewrite(n.get("query").str())
	if query == "" {
		return q, "a newRelic metric without a query"
	}
	q.query = query
	since := ""
	if !nrqlSince.MatchString(query) {
		since = "no SINCE: Argo sent the query as written (NRQL then reads the last hour); Sluice appends SINCE <check interval> seconds ago: add SINCE 1 hour ago to keep Argo's window"
	}
	markNotes(n.get("query"), argoTo+" spec.query", argsNote(changed), since, profile)
	q.provider.Timeout = seconds(n.get("timeout"))
	n.get("timeout").translate(argoTo+" spec.provider.timeout", "seconds written as a duration: the request's and the NRQL query's timeout")
	return q, ""
}

func argoCloudWatch(c node, in input) (argoQuery, string) {
	region, from := argoControllerRegion(in)
	if region == "" {
		return argoQuery{}, "a CloudWatch metric: Argo took the AWS region from its controller's environment (AWS_REGION), which is not among the inputs, and Sluice needs spec.provider.cloudWatch.region: give the Argo Rollouts controller's Deployment with -f, or write the MetricTemplate by hand with cloudWatch.region"
	}
	q := argoQuery{provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderCloudWatch, CloudWatch: &v1alpha1.CloudWatchProvider{Region: region}}}
	var queries []map[string]any
	returned := 0
	for _, d := range c.get("metricDataQueries").items() {
		o := map[string]any{"Id": d.get("id").str()}
		setStr := func(m map[string]any, k string, n node) {
			if n.ok {
				m[k] = n.str()
			}
		}
		setStr(o, "Expression", d.get("expression"))
		setStr(o, "Label", d.get("label"))
		if ms := d.get("metricStat"); ms.ok {
			met := map[string]any{}
			setStr(met, "Namespace", ms.get("metric").get("namespace"))
			setStr(met, "MetricName", ms.get("metric").get("metricName"))
			var dims []map[string]any
			for _, dim := range ms.get("metric").get("dimensions").items() {
				dims = append(dims, map[string]any{"Name": dim.get("name").str(), "Value": dim.get("value").str()})
			}
			if len(dims) > 0 {
				met["Dimensions"] = dims
			}
			st := map[string]any{"Metric": met}
			if p, ok := ms.get("period").int(); ok {
				st["Period"] = p
			}
			setStr(st, "Stat", ms.get("stat"))
			setStr(st, "Unit", ms.get("unit"))
			o["MetricStat"] = st
		}
		if p, ok := d.get("period").int(); ok {
			o["Period"] = p
		}
		if rd := d.get("returnData"); rd.ok {
			o["ReturnData"] = rd.bool()
		}
		if rd := d.get("returnData"); !rd.ok || rd.bool() {
			returned++
		}
		queries = append(queries, o)
	}
	switch {
	case len(queries) == 0:
		return q, "a CloudWatch metric without metricDataQueries"
	case returned > 1:
		return q, fmt.Sprintf("%d of its metricDataQueries return data (returnData unset or true): Argo judged every result, Sluice judges one value; set returnData: false on all but one and convert again", returned)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(queries); err != nil {
		return q, "metricDataQueries: " + err.Error()
	}
	var changed bool
	q.query, changed = argoArgsRewrite(strings.TrimSpace(b.String()))
	var wnote string
	q.window, wnote = argoWindow(c.get("interval"))
	markNotes(c.get("metricDataQueries"), argoTo+" spec.query", "a JSON array of MetricDataQuery objects as the AWS API spells them", argsNote(changed), wnote,
		fmt.Sprintf("spec.provider.cloudWatch.region %s, the region Argo took from its controller's environment (%s); without a secretRef Sluice uses its own controller pod's AWS identity, as Argo did: give Sluice's service account cloudwatch:GetMetricData", region, from))
	return q, ""
}

// argoControllerRegion is the AWS region of the Argo Rollouts
// controller's environment, when its Deployment is among the inputs, and
// where it was read.
func argoControllerRegion(in input) (region, from string) {
	for _, o := range in.objs {
		if o["apiVersion"] != "apps/v1" || o["kind"] != "Deployment" {
			continue
		}
		t := newTracker("", o)
		name, ns := nameOf(o)
		for _, c := range t.at("spec.template.spec.containers").items() {
			if !strings.Contains(c.get("image").str(), "argo-rollouts") && c.get("name").str() != "argo-rollouts" {
				continue
			}
			env := map[string]string{}
			for _, e := range c.get("env").items() {
				if v := e.get("value"); v.ok {
					env[e.get("name").str()] = v.str()
				}
			}
			for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
				if env[k] != "" {
					return env[k], fmt.Sprintf("%s of Deployment %s/%s", k, ns, name)
				}
			}
		}
	}
	return "", ""
}

func argoGraphite(g node) (argoQuery, string) {
	addr := g.get("address").carry(argoTo + " spec.provider.address").str()
	if addr == "" {
		return argoQuery{}, "a graphite metric without an address"
	}
	q := argoQuery{provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderGraphite, Address: addr}}
	var changed bool
	q.query, changed = argoArgsRewrite(g.get("query").str())
	from := ""
	if !graphiteHasFrom(q.query) {
		from = "no from: Argo left the range to graphite-web (its default, the last 24 hours); Sluice asks for the check's interval (from=-<interval>s)"
	}
	markNotes(g.get("query"), argoTo+" spec.query", argsNote(changed), from)
	return q, ""
}

// argoWebProblem says why a web metric stays a rollout webhook instead of
// becoming a web MetricTemplate; "" when it can become one.
func argoWebProblem(w node, conds argoConds) string {
	switch {
	case w.get("jsonPath").str() == "":
		return "it has no jsonPath, so no value to judge"
	case !conds.set():
		return "it has no successCondition or failureCondition"
	case conds.bad != "":
		return "Sluice's web provider reads one number, and " + conds.bad
	}
	if _, _, err := splitWebURL(w.get("url").str()); err != nil {
		return err.Error()
	}
	for _, h := range w.get("headers").items() {
		if strings.Contains(h.get("key").str()+h.get("value").str(), "{{") {
			return "a header takes the analysis' arguments, and a MetricTemplate's headers are fixed"
		}
	}
	return ""
}

// splitWebURL splits a URL into the address of a web MetricTemplate (its
// scheme and host) and its query (the path and query string).
func splitWebURL(u string) (address, query string, err error) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return "", "", fmt.Errorf("the URL %q is not http:// or https://", u)
	}
	host, path := rest, "/"
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	path, _, _ = strings.Cut(path, "#")
	switch {
	case host == "":
		return "", "", fmt.Errorf("the URL %q has no host", u)
	case strings.Contains(host, "{{"):
		return "", "", errors.New("its host takes the analysis' arguments, and a MetricTemplate's address is fixed")
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + "://" + host, path, nil
}

// argoWebhook converts a web metric into a rollout webhook.
func argoWebhook(w, m node, why string) *v1alpha1.Webhook {
	h := &v1alpha1.Webhook{Name: m.get("name").str(), Type: v1alpha1.WebhookRollout, URL: w.get("url").str()}
	w.get("url").translate("Canary spec.analysis.webhooks[].url", "a rollout webhook: Sluice POSTs its payload and a 2xx answer passes (not a web MetricTemplate: "+why+")")
	for _, k := range []string{"method", "headers", "body", "jsonBody", "jsonPath", "timeoutSeconds", "insecure", "authentication"} {
		w.get(k).dropf("Sluice's webhooks POST their own payload and pass on 2xx; %s has no equivalent", k)
	}
	m.get("successCondition").drop("a webhook passes on a 2xx answer; make the endpoint answer that way")
	m.get("failureCondition").drop("a webhook fails on a non-2xx answer; make the endpoint answer that way")
	return h
}

// argoWeb converts a web metric into a web MetricTemplate (argoWebProblem
// said it can).
func argoWeb(w node) argoQuery {
	addr, path, _ := splitWebURL(w.get("url").str())
	query, changed := argoArgsRewrite(path)
	web := &v1alpha1.WebProvider{JSONPath: w.get("jsonPath").carry(argoTo + " spec.provider.web.jsonPath").str()}
	q := argoQuery{provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderWeb, Address: addr, Web: web}, query: query}
	markNotes(w.get("url"), argoTo+" spec.provider.address, spec.query", "the scheme and host are the address, the path and query string the query", argsNote(changed))
	if m := w.get("method"); m.ok {
		web.Method = m.carry(argoTo + " spec.provider.web.method").str()
	}
	body, jb := w.get("body"), w.get("jsonBody")
	bn := body
	switch {
	case jb.ok:
		bn = jb
		raw, _ := json.Marshal(jb.v)
		web.Body, changed = argoArgsRewrite(string(raw))
		markNotes(jb, argoTo+" spec.provider.web.body", "the JSON written as a string, sent as application/json as Argo sent it", argsNote(changed))
		body.drop("jsonBody is set too, which Argo refused (every measurement errored); Sluice sends jsonBody")
	case body.ok:
		web.Body, changed = argoArgsRewrite(body.str())
		markNotes(body, argoTo+" spec.provider.web.body", argsNote(changed))
	}
	if web.Body != "" && (web.Method == "" || web.Method == "GET") {
		web.Body = ""
		bn.drop("a body with method GET, which Argo refused (every measurement errored) and Sluice refuses too: set method POST or PUT to send it")
	}
	q.provider.Headers = argoHeaders(w.get("headers"))
	q.provider.Timeout = seconds(w.get("timeoutSeconds"))
	w.get("timeoutSeconds").translate(argoTo+" spec.provider.timeout", "seconds written as a duration")
	q.provider.InsecureSkipVerify = argoInsecure(w.get("insecure"), addr)
	w.get("authentication").drop("SigV4 and OAuth2: Sluice's web provider takes a bearer token or basic auth from spec.provider.secretRef")
	return q
}

// argoConds are a metric's conditions written over Sluice's result, one
// number, with notes on what was rewritten.
type argoConds struct {
	succ, fail           string
	succNotes, failNotes []string
	// bad is the first condition that does not compile over one number.
	bad string
}

func (c argoConds) set() bool { return c.succ != "" || c.fail != "" }

// mark reports the conditions as the check's.
func (c argoConds) mark(m node) {
	markNotes(m.get("successCondition"), argoChk+".successCondition", c.succNotes...)
	markNotes(m.get("failureCondition"), argoChk+".failureCondition", c.failNotes...)
}

var (
	resultIndex   = regexp.MustCompile(`\bresult\[0\]`)
	resultDefault = regexp.MustCompile(`\bdefault\(\s*(result(?:\[0\])?(?:\.[A-Za-z_]\w*)?)\s*,\s*[-+0-9.eE]+\s*\)`)
	resultFloat   = regexp.MustCompile(`\basFloat\(\s*(result(?:\[0\])?(?:\.[A-Za-z_]\w*)?)\s*\)`)
	resultValues  = regexp.MustCompile(`\bresult\[0\]\.Values\[0\]`)
	resultField   = regexp.MustCompile(`\bresult\.([A-Za-z_]\w*)`)
	judge         = analysis.NewJudge()
)

// argoConditions rewrites a metric's conditions for the provider kind:
// Argo's result is a list for Prometheus, the list of MetricDataResults
// for CloudWatch, the first row for New Relic; Sluice's is one number.
func argoConditions(kind string, m node) argoConds {
	var c argoConds
	c.succ, c.succNotes = argoCondition(kind, m.get("successCondition").str())
	c.fail, c.failNotes = argoCondition(kind, m.get("failureCondition").str())
	for _, e := range judge.Validate(analysis.Check{SuccessCondition: c.succ, FailureCondition: c.fail}) {
		c.bad = e.Error()
		break
	}
	return c
}

func argoCondition(kind, cond string) (string, []string) {
	var notes []string
	rewrite := func(re *regexp.Regexp, repl, note string) {
		if out := re.ReplaceAllString(cond, repl); out != cond {
			cond = out
			notes = append(notes, note)
		}
	}
	rewrite(resultDefault, "$1", "default(result, x) written as result: a query without values fails the round in Sluice, where Argo judged x")
	rewrite(resultFloat, "$1", "asFloat(result) written as result: Sluice's value is a number already")
	switch kind {
	case "cloudWatch":
		rewrite(resultValues, "result", "result[0].Values[0] written as result: Sluice reads the newest value of the one result returned")
	case "newRelic":
		names := map[string]bool{}
		for _, m := range resultField.FindAllStringSubmatch(cond, -1) {
			names[m[1]] = true
		}
		if len(names) == 1 {
			var name string
			for n := range names {
				name = n
			}
			rewrite(resultField, "result", "result."+name+" written as result: Sluice reads the row's one value (select one, or name it AS value)")
		}
	default:
		rewrite(resultIndex, "result", "result[0] written as result: Sluice's queries return one value")
	}
	return cond, notes
}
