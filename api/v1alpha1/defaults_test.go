package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// getterCase is one getter read on one object: got is what it returned,
// want what it must.
type getterCase[T comparable] struct {
	name      string
	got, want T
}

func check[T comparable](t *testing.T, cases []getterCase[T]) {
	t.Helper()
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestDurationGetters(t *testing.T) {
	var nilSpec *CanarySpec
	var nilAnalysis *Analysis
	var nilVerification *Verification
	var nilHook *Webhook
	var nilProvider *MetricProvider
	var nilMetric *MetricCheck
	check(t, []getterCase[time.Duration]{
		{"nil spec progressDeadline", nilSpec.GetProgressDeadline(), DefaultProgressDeadline},
		{"empty progressDeadline", (&CanarySpec{}).GetProgressDeadline(), DefaultProgressDeadline},
		{"zero progressDeadline", (&CanarySpec{ProgressDeadline: dur(0)}).GetProgressDeadline(), DefaultProgressDeadline},
		{"set progressDeadline", (&CanarySpec{ProgressDeadline: dur(3 * time.Minute)}).GetProgressDeadline(), 3 * time.Minute},

		{"nil analysis interval", nilAnalysis.GetInterval(), DefaultAnalysisInterval},
		{"empty analysis interval", (&Analysis{}).GetInterval(), DefaultAnalysisInterval},
		{"zero analysis interval", (&Analysis{Interval: dur(0)}).GetInterval(), DefaultAnalysisInterval},
		{"set analysis interval", (&Analysis{Interval: dur(15 * time.Second)}).GetInterval(), 15 * time.Second},

		{"nil metric, nil analysis window", nilMetric.GetInterval(nil), DefaultAnalysisInterval},
		{"metric window from analysis", (&MetricCheck{}).GetInterval(&Analysis{Interval: dur(30 * time.Second)}), 30 * time.Second},
		{"zero metric window", (&MetricCheck{Interval: dur(0)}).GetInterval(&Analysis{Interval: dur(30 * time.Second)}), 30 * time.Second},
		{"set metric window", (&MetricCheck{Interval: dur(5 * time.Minute)}).GetInterval(&Analysis{Interval: dur(30 * time.Second)}), 5 * time.Minute},

		{"nil verification timeout", nilVerification.GetTimeout(), DefaultVerificationTimeout},
		{"empty verification timeout", (&Verification{}).GetTimeout(), DefaultVerificationTimeout},
		{"zero verification timeout", (&Verification{Timeout: dur(0)}).GetTimeout(), DefaultVerificationTimeout},
		{"set verification timeout", (&Verification{Timeout: dur(time.Minute)}).GetTimeout(), time.Minute},
		{"nil verification interval", nilVerification.GetInterval(), DefaultVerificationInterval},
		{"zero verification interval", (&Verification{Interval: dur(0)}).GetInterval(), DefaultVerificationInterval},
		{"set verification interval", (&Verification{Interval: dur(time.Second)}).GetInterval(), time.Second},

		{"nil webhook timeout", nilHook.GetTimeout(), DefaultWebhookTimeout},
		{"zero webhook timeout", (&Webhook{Timeout: dur(0)}).GetTimeout(), DefaultWebhookTimeout},
		{"set webhook timeout", (&Webhook{Timeout: dur(2 * time.Second)}).GetTimeout(), 2 * time.Second},

		{"nil provider timeout", nilProvider.GetTimeout(), DefaultQueryTimeout},
		{"zero provider timeout", (&MetricProvider{Timeout: dur(0)}).GetTimeout(), DefaultQueryTimeout},
		{"set provider timeout", (&MetricProvider{Timeout: dur(time.Second)}).GetTimeout(), time.Second},
	})
}

func TestCountGetters(t *testing.T) {
	var nilSpec *CanarySpec
	var nilAnalysis *Analysis
	var nilVerification *Verification
	var nilStrategy *Strategy
	var nilHook *Webhook
	var nilBackend *BackendRef
	var nilConsul *ConsulRouter
	var nilAmbassador *AmbassadorRouter
	check(t, []getterCase[int32]{
		{"nil spec primary threshold", nilSpec.GetPrimaryReadyThreshold(), DefaultReadyThreshold},
		{"empty primary threshold", (&CanarySpec{}).GetPrimaryReadyThreshold(), DefaultReadyThreshold},
		{"set primary threshold", (&CanarySpec{PrimaryReadyThreshold: ptr[int32](50)}).GetPrimaryReadyThreshold(), 50},
		{"nil spec canary threshold", nilSpec.GetCanaryReadyThreshold(), DefaultReadyThreshold},
		{"empty canary threshold", (&CanarySpec{}).GetCanaryReadyThreshold(), DefaultReadyThreshold},
		{"set canary threshold", (&CanarySpec{CanaryReadyThreshold: ptr[int32](1)}).GetCanaryReadyThreshold(), 1},
		{"nil spec history limit", nilSpec.GetRevisionHistoryLimit(), DefaultRevisionHistoryLimit},
		{"set history limit", (&CanarySpec{RevisionHistoryLimit: ptr[int32](3)}).GetRevisionHistoryLimit(), 3},

		{"nil analysis threshold", nilAnalysis.GetThreshold(), DefaultAnalysisThreshold},
		{"empty analysis threshold", (&Analysis{}).GetThreshold(), DefaultAnalysisThreshold},
		{"zero analysis threshold", (&Analysis{Threshold: ptr[int32](0)}).GetThreshold(), DefaultAnalysisThreshold},
		{"set analysis threshold", (&Analysis{Threshold: ptr[int32](2)}).GetThreshold(), 2},

		{"nil verification retries", nilVerification.GetRetries(), DefaultVerificationRetries},
		{"empty verification retries", (&Verification{}).GetRetries(), DefaultVerificationRetries},
		// No retries is a choice: the first mismatch fails the promotion.
		{"zero verification retries", (&Verification{Retries: ptr[int32](0)}).GetRetries(), 0},
		{"set verification retries", (&Verification{Retries: ptr[int32](7)}).GetRetries(), 7},

		{"nil strategy maxWeight", nilStrategy.GetMaxWeight(), DefaultMaxWeight},
		{"stepWeight maxWeight", (&Strategy{StepWeight: ptr[int32](10)}).GetMaxWeight(), DefaultMaxWeight},
		{"stepWeights maxWeight", (&Strategy{StepWeights: []int32{5, 20, 80}}).GetMaxWeight(), 80},
		{"set maxWeight", (&Strategy{StepWeight: ptr[int32](10), MaxWeight: ptr[int32](30)}).GetMaxWeight(), 30},
		{"set maxWeight over stepWeights", (&Strategy{StepWeights: []int32{5, 20, 80}, MaxWeight: ptr[int32](20)}).GetMaxWeight(), 20},

		{"nil webhook retries", nilHook.GetRetries(), DefaultWebhookRetries},
		{"zero webhook retries", (&Webhook{Retries: ptr[int32](0)}).GetRetries(), 0},
		{"set webhook retries", (&Webhook{Retries: ptr[int32](5)}).GetRetries(), 5},

		{"nil backend weight", nilBackend.GetWeight(), DefaultBackendWeight},
		{"zero backend weight", (&BackendRef{Weight: ptr[int32](0)}).GetWeight(), 0},
		{"set backend weight", (&BackendRef{Weight: ptr[int32](3)}).GetWeight(), 3},

		{"nil consul regex size", nilConsul.GetRegexMaxProgramSize(), DefaultConsulRegexMaxProgramSize},
		{"set consul regex size", (&ConsulRouter{RegexMaxProgramSize: ptr[int32](1000)}).GetRegexMaxProgramSize(), 1000},
		{"nil ambassador regex size", nilAmbassador.GetRegexMaxProgramSize(), DefaultAmbassadorRegexMaxProgramSize},
		{"set ambassador regex size", (&AmbassadorRouter{RegexMaxProgramSize: ptr[int32](300)}).GetRegexMaxProgramSize(), 300},
	})
}

func TestNameGetters(t *testing.T) {
	var nilSpec *CanarySpec
	var nilService *ServiceSpec
	var nilBackend *BackendRef
	var nilConsul *ConsulRouter
	var nilKey *SecretKeyRef
	var nilTemplate *TemplateRef
	var nilMiddleware *TraefikMiddlewareRef
	target := CanarySpec{TargetRef: TargetRef{Name: "web"}}
	named := CanarySpec{TargetRef: TargetRef{Name: "web"}, Service: ServiceSpec{Name: "front"}}
	check(t, []getterCase[string]{
		{"nil spec service name", nilSpec.GetServiceName(), ""},
		{"service name from target", target.GetServiceName(), "web"},
		{"set service name", named.GetServiceName(), "front"},
		{"nil service port name", nilService.GetPortName(), DefaultPortName},
		{"set port name", (&ServiceSpec{PortName: "grpc"}).GetPortName(), "grpc"},

		{"nil backend kind", nilBackend.GetKind(), DefaultBackendKind},
		{"set backend kind", (&BackendRef{Kind: ptr("ServiceImport")}).GetKind(), "ServiceImport"},
		{"nil backend group", nilBackend.GetGroup(), ""},
		{"core backend group", (&BackendRef{Group: ptr("core")}).GetGroup(), ""},
		{"set backend group", (&BackendRef{Group: ptr("multicluster.x-k8s.io")}).GetGroup(), "multicluster.x-k8s.io"},
		{"nil backend namespace", nilBackend.GetNamespace("apps"), "apps"},
		{"set backend namespace", (&BackendRef{Namespace: ptr("proxy")}).GetNamespace("apps"), "proxy"},

		{"nil consul service", nilConsul.GetServiceName("web"), "web"},
		{"set consul service", (&ConsulRouter{ServiceName: "web-svc"}).GetServiceName("web"), "web-svc"},
		{"nil consul meta key", nilConsul.GetMetaKey(), DefaultConsulMetaKey},
		{"set consul meta key", (&ConsulRouter{MetaKey: "rev"}).GetMetaKey(), "rev"},
		{"nil consul stable subset", nilConsul.GetStableSubset(), DefaultConsulStableSubset},
		{"set consul stable subset", (&ConsulRouter{StableSubset: "v1"}).GetStableSubset(), "v1"},
		{"nil consul canary subset", nilConsul.GetCanarySubset(), DefaultConsulCanarySubset},
		{"set consul canary subset", (&ConsulRouter{CanarySubset: "v2"}).GetCanarySubset(), "v2"},

		{"nil secret key", nilKey.GetKey(), DefaultSecretKey},
		{"set secret key", (&SecretKeyRef{Key: "hmac"}).GetKey(), "hmac"},
		{"nil template namespace", nilTemplate.GetNamespace("apps"), "apps"},
		{"set template namespace", (&TemplateRef{Namespace: "monitoring"}).GetNamespace("apps"), "monitoring"},
		{"nil middleware namespace", nilMiddleware.GetNamespace("apps"), "apps"},
		{"set middleware namespace", (&TraefikMiddlewareRef{Namespace: "edge"}).GetNamespace("apps"), "edge"},
	})
}

func TestEnumGetters(t *testing.T) {
	var nilSpec *CanarySpec
	check(t, []getterCase[HandBack]{
		{"nil spec hand-back", nilSpec.GetHandBackOnDeletion(), HandBackLastGood},
		{"empty hand-back", (&CanarySpec{}).GetHandBackOnDeletion(), HandBackLastGood},
		{"set hand-back", (&CanarySpec{HandBackOnDeletion: HandBackTarget}).GetHandBackOnDeletion(), HandBackTarget},
	})
	var nilHook *Webhook
	check(t, []getterCase[WebhookType]{
		{"nil webhook type", nilHook.GetType(), WebhookRollout},
		{"empty webhook type", (&Webhook{}).GetType(), WebhookRollout},
		{"set webhook type", (&Webhook{Type: WebhookConfirmPromotion}).GetType(), WebhookConfirmPromotion},
	})
	var nilConsul *ConsulRouter
	check(t, []getterCase[bool]{
		{"nil consul waitForSync", nilConsul.GetWaitForSync(), true},
		{"empty consul waitForSync", (&ConsulRouter{}).GetWaitForSync(), true},
		{"false consul waitForSync", (&ConsulRouter{WaitForSync: ptr(false)}).GetWaitForSync(), false},
		{"true consul waitForSync", (&ConsulRouter{WaitForSync: ptr(true)}).GetWaitForSync(), true},
	})
	var nilService *ServiceSpec
	check(t, []getterCase[intstr.IntOrString]{
		{"nil service target port", nilService.GetTargetPort(), intstr.IntOrString{}},
		{"target port from port", (&ServiceSpec{Port: 8080}).GetTargetPort(), intstr.FromInt32(8080)},
		{"numeric target port", (&ServiceSpec{Port: 80, TargetPort: "9090"}).GetTargetPort(), intstr.FromInt32(9090)},
		{"named target port", (&ServiceSpec{Port: 80, TargetPort: "web"}).GetTargetPort(), intstr.FromString("web")},
	})
}
