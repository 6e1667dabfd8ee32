package v1alpha1

import (
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Defaults of the fields a Canary may leave empty. They are applied when
// the field is read (through the getters below), not written into the
// object by the API server, so that a changed default reaches existing
// Canaries. The engine, the controller, the routers, `kubectl sluice` and
// `kubectl sluice lint` all read a field through its getter, so they never
// disagree on what an empty field means.
const (
	// DefaultProgressDeadline is spec.progressDeadline's default.
	DefaultProgressDeadline = 10 * time.Minute
	// DefaultReadyThreshold is the default of spec.primaryReadyThreshold
	// and spec.canaryReadyThreshold (percent of replicas available).
	DefaultReadyThreshold = 100
	// DefaultRevisionHistoryLimit is spec.revisionHistoryLimit's default.
	DefaultRevisionHistoryLimit = 10
	// DefaultHandBack is spec.handBackOnDeletion's default.
	DefaultHandBack = HandBackLastGood

	// DefaultMaxWeight is spec.strategy.maxWeight's default with
	// stepWeight.
	DefaultMaxWeight = 50

	// DefaultScaleDownDelay is spec.strategy.blueGreen.scaleDownDelay's
	// default, Argo Rollouts' scaleDownDelaySeconds default.
	DefaultScaleDownDelay = 30 * time.Second

	// DefaultAnalysisInterval is spec.analysis.interval's default: the
	// time between check rounds.
	DefaultAnalysisInterval = time.Minute
	// DefaultAnalysisThreshold is spec.analysis.threshold's default: the
	// failed check rounds that roll a release back.
	DefaultAnalysisThreshold = 5

	// DefaultVerificationTimeout is spec.verification.timeout's default.
	DefaultVerificationTimeout = 5 * time.Minute
	// DefaultVerificationRetries is spec.verification.retries's default.
	DefaultVerificationRetries = 3
	// DefaultVerificationInterval is spec.verification.interval's default.
	DefaultVerificationInterval = 10 * time.Second

	// DefaultPortName is spec.service.portName's default.
	DefaultPortName = "http"
	// DefaultBackendKind is spec.service.backendRefs[].kind's default.
	DefaultBackendKind = "Service"
	// DefaultBackendWeight is spec.service.backendRefs[].weight's default.
	DefaultBackendWeight = 1

	// DefaultConsulMetaKey is spec.router.consul.metaKey's default.
	DefaultConsulMetaKey = "version"
	// DefaultConsulStableSubset is spec.router.consul.stableSubset's
	// default.
	DefaultConsulStableSubset = "stable"
	// DefaultConsulCanarySubset is spec.router.consul.canarySubset's
	// default.
	DefaultConsulCanarySubset = "canary"
	// DefaultConsulRegexMaxProgramSize is
	// spec.router.consul.regexMaxProgramSize's default: the largest RE2
	// program Envoy accepts unless its runtime says otherwise
	// (re2.max_program_size.error_level).
	DefaultConsulRegexMaxProgramSize = 100
	// DefaultAmbassadorRegexMaxProgramSize is
	// spec.router.ambassador.regexMaxProgramSize's default: the largest
	// RE2 program Emissary lets Envoy accept unless its Module says
	// otherwise (regex_max_size).
	DefaultAmbassadorRegexMaxProgramSize = 200

	// DefaultWebhookType is spec.analysis.webhooks[].type's default.
	DefaultWebhookType = WebhookRollout
	// DefaultWebhookTimeout is spec.analysis.webhooks[].timeout's default.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultWebhookRetries is spec.analysis.webhooks[].retries's default.
	DefaultWebhookRetries = 2
	// DefaultSecretKey is the default key of a webhook's secretRef.
	DefaultSecretKey = "key"

	// DefaultQueryTimeout is a MetricTemplate's spec.provider.timeout
	// default.
	DefaultQueryTimeout = 10 * time.Second
)

// GetProgressDeadline is spec.progressDeadline, or its default when it is
// empty or not above zero.
func (s *CanarySpec) GetProgressDeadline() time.Duration {
	if s != nil && s.ProgressDeadline != nil && s.ProgressDeadline.Duration > 0 {
		return s.ProgressDeadline.Duration
	}
	return DefaultProgressDeadline
}

// GetPrimaryReadyThreshold is spec.primaryReadyThreshold, or its default.
func (s *CanarySpec) GetPrimaryReadyThreshold() int32 {
	if s != nil && s.PrimaryReadyThreshold != nil {
		return *s.PrimaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// GetCanaryReadyThreshold is spec.canaryReadyThreshold, or its default.
func (s *CanarySpec) GetCanaryReadyThreshold() int32 {
	if s != nil && s.CanaryReadyThreshold != nil {
		return *s.CanaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// GetRevisionHistoryLimit is spec.revisionHistoryLimit, or its default.
func (s *CanarySpec) GetRevisionHistoryLimit() int32 {
	if s != nil && s.RevisionHistoryLimit != nil {
		return *s.RevisionHistoryLimit
	}
	return DefaultRevisionHistoryLimit
}

// GetHandBackOnDeletion is spec.handBackOnDeletion, or its default.
func (s *CanarySpec) GetHandBackOnDeletion() HandBack {
	if s != nil && s.HandBackOnDeletion != "" {
		return s.HandBackOnDeletion
	}
	return DefaultHandBack
}

// GetServiceName is the apex Service's name: spec.service.name, or the
// target's name.
func (s *CanarySpec) GetServiceName() string {
	if s == nil {
		return ""
	}
	if s.Service.Name != "" {
		return s.Service.Name
	}
	return s.TargetRef.Name
}

// GetPortName is spec.service.portName, or its default.
func (s *ServiceSpec) GetPortName() string {
	if s != nil && s.PortName != "" {
		return s.PortName
	}
	return DefaultPortName
}

// GetTargetPort is spec.service.targetPort (a number or a name), or
// spec.service.port.
func (s *ServiceSpec) GetTargetPort() intstr.IntOrString {
	if s == nil {
		return intstr.IntOrString{}
	}
	if s.TargetPort != "" {
		return intstr.Parse(s.TargetPort)
	}
	return intstr.FromInt32(s.Port)
}

// GetKind is the backend's kind, or its default (Service).
func (b *BackendRef) GetKind() string {
	if b != nil && b.Kind != nil {
		return *b.Kind
	}
	return DefaultBackendKind
}

// GetGroup is the backend's group; "" (also written "core") is the core
// group.
func (b *BackendRef) GetGroup() string {
	if b != nil && b.Group != nil && *b.Group != "core" {
		return *b.Group
	}
	return ""
}

// GetNamespace is the backend's namespace, or canaryNamespace (the
// Canary's) when it names none.
func (b *BackendRef) GetNamespace(canaryNamespace string) string {
	if b != nil && b.Namespace != nil {
		return *b.Namespace
	}
	return canaryNamespace
}

// GetWeight is the backend's weight, or its default.
func (b *BackendRef) GetWeight() int32 {
	if b != nil && b.Weight != nil {
		return *b.Weight
	}
	return DefaultBackendWeight
}

// GetMaxWeight is the shorthand's cap: spec.strategy.maxWeight; without
// it, the last of stepWeights, or DefaultMaxWeight with stepWeight.
func (s *Strategy) GetMaxWeight() int32 {
	switch {
	case s == nil:
		return DefaultMaxWeight
	case s.MaxWeight != nil:
		return *s.MaxWeight
	case len(s.StepWeights) > 0:
		return s.StepWeights[len(s.StepWeights)-1]
	}
	return DefaultMaxWeight
}

// GetScaleDownDelay is how long the old copy keeps running after a
// blue/green switch: scaleDownDelay, or its default.
func (b *BlueGreen) GetScaleDownDelay() time.Duration {
	if b != nil && b.ScaleDownDelay != nil && b.ScaleDownDelay.Duration >= 0 {
		return b.ScaleDownDelay.Duration
	}
	return DefaultScaleDownDelay
}

// AutoPromotes says whether the switch follows by itself
// (autoPromotionEnabled, default true).
func (b *BlueGreen) AutoPromotes() bool {
	return b == nil || b.AutoPromotionEnabled == nil || *b.AutoPromotionEnabled
}

// GetAutoPromotion is how long the preview runs before the switch
// (autoPromotionSeconds, default 0).
func (b *BlueGreen) GetAutoPromotion() time.Duration {
	if b != nil && b.AutoPromotionSeconds != nil && *b.AutoPromotionSeconds > 0 {
		return time.Duration(*b.AutoPromotionSeconds) * time.Second
	}
	return 0
}

// NoRouter says whether the spec names no router: the apex Service alone
// routes.
func (r RouterSpec) NoRouter() bool {
	return r.GatewayAPI == nil && r.Traefik == nil && r.Ambassador == nil && r.Consul == nil && r.NGINX == nil && r.Istio == nil
}

// GetInterval is the time between check rounds: spec.analysis.interval,
// or its default when it is empty or not above zero (or there is no
// analysis).
func (a *Analysis) GetInterval() time.Duration {
	if a != nil && a.Interval != nil && a.Interval.Duration > 0 {
		return a.Interval.Duration
	}
	return DefaultAnalysisInterval
}

// GetThreshold is the number of failed check rounds that rolls a release
// back: spec.analysis.threshold, or its default when it is empty or not
// above zero.
func (a *Analysis) GetThreshold() int32 {
	if a != nil && a.Threshold != nil && *a.Threshold > 0 {
		return *a.Threshold
	}
	return DefaultAnalysisThreshold
}

// GetInterval is the metric's query window: its own interval when above
// zero, else the analysis interval (see Analysis.GetInterval).
func (m *MetricCheck) GetInterval(a *Analysis) time.Duration {
	if m != nil && m.Interval != nil && m.Interval.Duration > 0 {
		return m.Interval.Duration
	}
	return a.GetInterval()
}

// GetNamespace is the template's namespace, or canaryNamespace (the
// Canary's) when it names none.
func (t *TemplateRef) GetNamespace(canaryNamespace string) string {
	if t != nil && t.Namespace != "" {
		return t.Namespace
	}
	return canaryNamespace
}

// GetType is the webhook's type, or its default (rollout).
func (h *Webhook) GetType() WebhookType {
	if h != nil && h.Type != "" {
		return h.Type
	}
	return DefaultWebhookType
}

// GetTimeout is the timeout of each of the webhook's attempts, or its
// default when it is empty or not above zero.
func (h *Webhook) GetTimeout() time.Duration {
	if h != nil && h.Timeout != nil && h.Timeout.Duration > 0 {
		return h.Timeout.Duration
	}
	return DefaultWebhookTimeout
}

// GetRetries is the number of retries after a failed attempt, or its
// default.
func (h *Webhook) GetRetries() int32 {
	if h != nil && h.Retries != nil {
		return *h.Retries
	}
	return DefaultWebhookRetries
}

// GetKey is the key of the Secret's data, or its default ("key").
func (r *SecretKeyRef) GetKey() string {
	if r != nil && r.Key != "" {
		return r.Key
	}
	return DefaultSecretKey
}

// GetTimeout is the timeout of one query, or its default when it is empty
// or not above zero.
func (p *MetricProvider) GetTimeout() time.Duration {
	if p != nil && p.Timeout != nil && p.Timeout.Duration > 0 {
		return p.Timeout.Duration
	}
	return DefaultQueryTimeout
}

// GetTimeout is how long the promoted primary may take to match its
// record: spec.verification.timeout, or its default when it is empty or
// not above zero (or there is no spec.verification).
func (v *Verification) GetTimeout() time.Duration {
	if v != nil && v.Timeout != nil && v.Timeout.Duration > 0 {
		return v.Timeout.Duration
	}
	return DefaultVerificationTimeout
}

// GetRetries is the number of mismatches tolerated:
// spec.verification.retries (0 included), or its default.
func (v *Verification) GetRetries() int32 {
	if v != nil && v.Retries != nil {
		return *v.Retries
	}
	return DefaultVerificationRetries
}

// GetInterval is the time between counted mismatches:
// spec.verification.interval, or its default when it is empty or not
// above zero.
func (v *Verification) GetInterval() time.Duration {
	if v != nil && v.Interval != nil && v.Interval.Duration > 0 {
		return v.Interval.Duration
	}
	return DefaultVerificationInterval
}

// GetServiceName is the Consul service (and the name of its config
// entries): spec.router.consul.serviceName, or apex, the Canary's apex
// Service (CanarySpec.GetServiceName).
func (r *ConsulRouter) GetServiceName(apex string) string {
	if r != nil && r.ServiceName != "" {
		return r.ServiceName
	}
	return apex
}

// GetMetaKey is the service-meta key that tells the subsets apart, or its
// default.
func (r *ConsulRouter) GetMetaKey() string {
	if r != nil && r.MetaKey != "" {
		return r.MetaKey
	}
	return DefaultConsulMetaKey
}

// GetStableSubset is the resolver's stable subset, or its default.
func (r *ConsulRouter) GetStableSubset() string {
	if r != nil && r.StableSubset != "" {
		return r.StableSubset
	}
	return DefaultConsulStableSubset
}

// GetCanarySubset is the resolver's canary subset, or its default.
func (r *ConsulRouter) GetCanarySubset() string {
	if r != nil && r.CanarySubset != "" {
		return r.CanarySubset
	}
	return DefaultConsulCanarySubset
}

// GetWaitForSync says whether a step waits for consul-k8s to report its
// config entries synced; true unless set false.
func (r *ConsulRouter) GetWaitForSync() bool {
	return r == nil || r.WaitForSync == nil || *r.WaitForSync
}

// GetRegexMaxProgramSize is the largest RE2 program the proxies accept
// for a header regex, or its default.
func (r *ConsulRouter) GetRegexMaxProgramSize() int32 {
	if r != nil && r.RegexMaxProgramSize != nil {
		return *r.RegexMaxProgramSize
	}
	return DefaultConsulRegexMaxProgramSize
}

// GetRegexMaxProgramSize is the largest RE2 program Emissary lets Envoy
// accept for a header regex, or its default.
func (r *AmbassadorRouter) GetRegexMaxProgramSize() int32 {
	if r != nil && r.RegexMaxProgramSize != nil {
		return *r.RegexMaxProgramSize
	}
	return DefaultAmbassadorRegexMaxProgramSize
}

// GetNamespace is the Middleware's namespace, or canaryNamespace (the
// Canary's) when it names none.
func (m *TraefikMiddlewareRef) GetNamespace(canaryNamespace string) string {
	if m != nil && m.Namespace != "" {
		return m.Namespace
	}
	return canaryNamespace
}

// DefaultSessionCookie and DefaultSessionMaxAge are sessionAffinity's
// defaults.
const (
	DefaultSessionCookie = "sluice-canary"
	DefaultSessionMaxAge = 24 * time.Hour
)

// GetCookieName is the cookie's name: cookieName, or DefaultSessionCookie.
func (a *SessionAffinity) GetCookieName() string {
	if a == nil || a.CookieName == "" {
		return DefaultSessionCookie
	}
	return a.CookieName
}

// GetMaxAge is how long a client keeps the cookie: maxAge, or
// DefaultSessionMaxAge.
func (a *SessionAffinity) GetMaxAge() time.Duration {
	if a == nil || a.MaxAge == nil {
		return DefaultSessionMaxAge
	}
	return a.MaxAge.Duration
}

// DefaultCookieValue is a cookie match's value when none is given.
const DefaultCookieValue = "always"

// GetValue is the cookie's value: value, or DefaultCookieValue.
func (m *CookieMatch) GetValue() string {
	if m.Value == "" {
		return DefaultCookieValue
	}
	return m.Value
}

// CookieRegex matches a whole Cookie header that carries the cookie name
// with value (RE2; anchored, so it means the same to a proxy that matches
// the whole value and to one that searches it).
func CookieRegex(name, value string) string {
	return `^(.*;\s*)?` + regexp.QuoteMeta(name) + `=` + regexp.QuoteMeta(value) + `(\s*;.*)?$`
}

// Headers are the header route's matches as header matches only: its
// matches, then its cookie as a regex on the Cookie header. Routers
// without cookie matches of their own write these, and read them back.
func (hr *HeaderRoute) Headers() []HeaderMatch {
	if hr == nil {
		return nil
	}
	out := append([]HeaderMatch(nil), hr.Match...)
	if c := hr.Cookie; c != nil {
		re := CookieRegex(c.Name, c.GetValue())
		out = append(out, HeaderMatch{Name: "Cookie", Regex: &re})
	}
	return out
}

// Datadog and New Relic defaults.
const (
	DefaultDatadogSite       = "datadoghq.com"
	DefaultDatadogAPIVersion = "v2"
	DefaultDatadogAggregator = "avg"
	DefaultNewRelicRegion    = "US"
	DefaultWebMethod         = "GET"
)

// GetSite is spec.provider.datadog.site or its default.
func (d *DatadogProvider) GetSite() string {
	if d != nil && d.Site != "" {
		return d.Site
	}
	return DefaultDatadogSite
}

// GetAPIVersion is spec.provider.datadog.apiVersion or its default.
func (d *DatadogProvider) GetAPIVersion() string {
	if d != nil && d.APIVersion != "" {
		return d.APIVersion
	}
	return DefaultDatadogAPIVersion
}

// GetAggregator is spec.provider.datadog.aggregator or its default.
func (d *DatadogProvider) GetAggregator() string {
	if d != nil && d.Aggregator != "" {
		return d.Aggregator
	}
	return DefaultDatadogAggregator
}

// GetRegion is spec.provider.newRelic.region or its default.
func (n *NewRelicProvider) GetRegion() string {
	if n != nil && n.Region != "" {
		return n.Region
	}
	return DefaultNewRelicRegion
}

// GetMethod is spec.provider.web.method or its default.
func (w *WebProvider) GetMethod() string {
	if w != nil && w.Method != "" {
		return w.Method
	}
	return DefaultWebMethod
}

// The statistical judge's defaults.
const (
	DefaultJudgePassScore         = 95
	DefaultJudgeMarginalScore     = 75
	DefaultJudgeConfidence        = 99
	DefaultCompareDirection       = "Either"
	DefaultCompareTolerance       = 5
	DefaultCompareMinSamples      = 20
	DefaultCompareWeight          = 1
	DefaultCompareSamplesPerRound = 30
)

// GetPassScore is spec.analysis.judge.passScore or its default.
func (j *Judge) GetPassScore() int32 {
	if j != nil && j.PassScore != nil {
		return *j.PassScore
	}
	return DefaultJudgePassScore
}

// GetMarginalScore is spec.analysis.judge.marginalScore or its default.
func (j *Judge) GetMarginalScore() int32 {
	if j != nil && j.MarginalScore != nil {
		return *j.MarginalScore
	}
	return DefaultJudgeMarginalScore
}

// GetConfidence is spec.analysis.judge.confidence or its default, in
// percent.
func (j *Judge) GetConfidence() int32 {
	if j != nil && j.Confidence != nil {
		return *j.Confidence
	}
	return DefaultJudgeConfidence
}

// GetDirection is compare.direction or its default.
func (c *Comparison) GetDirection() string {
	if c != nil && c.Direction != "" {
		return c.Direction
	}
	return DefaultCompareDirection
}

// GetTolerancePercent is compare.tolerancePercent or its default.
func (c *Comparison) GetTolerancePercent() int32 {
	if c != nil && c.TolerancePercent != nil {
		return *c.TolerancePercent
	}
	return DefaultCompareTolerance
}

// GetMinSamples is compare.minSamples or its default.
func (c *Comparison) GetMinSamples() int32 {
	if c != nil && c.MinSamples != nil {
		return *c.MinSamples
	}
	return DefaultCompareMinSamples
}

// GetWeight is compare.weight or its default.
func (c *Comparison) GetWeight() int32 {
	if c != nil && c.Weight != nil {
		return *c.Weight
	}
	return DefaultCompareWeight
}

// GetSampleInterval is compare.sampleInterval, or the window divided by
// DefaultCompareSamplesPerRound (at least a second).
func (c *Comparison) GetSampleInterval(window time.Duration) time.Duration {
	if c != nil && c.SampleInterval != nil && c.SampleInterval.Duration > 0 {
		return c.SampleInterval.Duration
	}
	return max(window/DefaultCompareSamplesPerRound, time.Second)
}

// JudgeCheckName is the judge's entry among a round's checks
// (status.metrics).
const JudgeCheckName = "judge"

// Compares says whether any metric compares the canary with the primary
// (so the statistical judge scores each round).
func (a *Analysis) Compares() bool {
	if a == nil {
		return false
	}
	for _, m := range a.Metrics {
		if m.Compare != nil {
			return true
		}
	}
	return false
}

// Alert defaults.
const (
	DefaultAlertSeverity      = SeverityInfo
	DefaultAlertDedupWindow   = 10 * time.Minute
	DefaultAlertRatePerMinute = 20
)

// GetSeverity is the alert's severity or its default.
func (a *Alert) GetSeverity() string {
	if a != nil && a.Severity != "" {
		return a.Severity
	}
	return DefaultAlertSeverity
}

// GetNamespace is the provider's namespace, or def.
func (r AlertProviderRef) GetNamespace(def string) string {
	if r.Namespace != "" {
		return r.Namespace
	}
	return def
}

// GetDedupWindow is spec.dedupWindow or its default.
func (s *AlertProviderSpec) GetDedupWindow() time.Duration {
	if s != nil && s.DedupWindow != nil && s.DedupWindow.Duration > 0 {
		return s.DedupWindow.Duration
	}
	return DefaultAlertDedupWindow
}

// GetRatePerMinute is spec.ratePerMinute or its default.
func (s *AlertProviderSpec) GetRatePerMinute() int32 {
	if s != nil && s.RatePerMinute != nil && *s.RatePerMinute > 0 {
		return *s.RatePerMinute
	}
	return DefaultAlertRatePerMinute
}
