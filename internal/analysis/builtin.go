package analysis

// Builtin metric sources (the controller's --builtin-metrics): which
// series the builtin metrics are asked of.
//
// A router may have builtin queries of its own (router.Registration's
// BuiltinQueries: Traefik's); its name is then a source too.
const (
	// BuiltinAuto: the router's own series where it has them, else the
	// app's. It names no queries of its own: the caller picks a source
	// per Canary.
	BuiltinAuto  = "auto"
	BuiltinApp   = "app"
	BuiltinEnvoy = "envoy"
)

// BuiltinQuery returns the query template of the builtin metric named
// metric in source (BuiltinApp or BuiltinEnvoy), and
// false when source has no such metric.
func BuiltinQuery(source, metric string) (string, bool) {
	q, ok := builtinQueries[source][metric]
	return q, ok
}

// builtinQueries are the builtin metrics' query templates, by source and
// metric name.
//
//   - app: the conventional HTTP metrics of the app itself,
//     http_requests_total{code} and http_request_duration_seconds_bucket,
//     scraped with namespace and pod labels; only the target's (canary's)
//     pods are selected.
//   - envoy: the upstream-cluster statistics of an Envoy-based Gateway API
//     implementation for the canary Service: envoy_cluster_upstream_rq
//     {envoy_response_code} and envoy_cluster_upstream_rq_time_bucket (ms),
//     with the cluster named as Contour names it (<ns>/<service>/<port>/<hash>)
//     or as Istio does (outbound|<port>||<service>.<ns>.svc.cluster.local).
var builtinQueries = map[string]map[string]string{
	BuiltinApp: {
		"request-success-rate": `100 * sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code!~"5.."}[{{ interval }}])) / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))`,
		"request-duration":     `1000 * histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}])) by (le))`,
	},
	BuiltinEnvoy: {
		"request-success-rate": `100 * sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"` + envoyCanaryCluster + `",envoy_response_code!~"5.."}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"` + envoyCanaryCluster + `"}[{{ interval }}]))`,
		"request-duration":     `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"` + envoyCanaryCluster + `"}[{{ interval }}])) by (le))`,
	},
}

// envoyCanaryCluster matches the Envoy clusters of the canary Service.
const envoyCanaryCluster = `{{ namespace }}/{{ service }}-canary/[0-9]+/.+|outbound\\|[0-9]+\\|\\|{{ service }}-canary\\.{{ namespace }}\\.svc\\.cluster\\.local`
