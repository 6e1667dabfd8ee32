package lint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/testenv"
)

func newLinter(t *testing.T) *Linter {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The shipped examples lint clean.
func TestExamplesAreClean(t *testing.T) {
	l := newLinter(t)
	files, _ := filepath.Glob("../../examples/*/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.LintBytes(context.Background(), b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, fd := range got {
			t.Errorf("%s: %s", f, fd)
		}
	}
}

const goodCanary = `apiVersion: sluice.dev/v1alpha1
kind: Canary
metadata: {name: web, namespace: %s}
spec:
  targetRef: {name: web}
  service: {port: 80}
  router: {gatewayAPI: {parentRefs: [{name: public}]}}
  strategy: {steps: [{setWeight: 10}, {pause: {duration: 1m}}]}
`

// Bad Canaries: for each, what lint says must include every cause the real
// apiserver gives for the same object, word for word.
var badCanaries = map[string]string{
	"two routers":            `{"spec":{"router":{"nginx":{"ingress":"web"}}}}`,
	"blueGreen with steps":   `{"spec":{"strategy":{"blueGreen":{}}}}`,
	"preview is the canary":  `{"spec":{"strategy":{"steps":null,"blueGreen":{"previewService":"web-canary"}}}}`,
	"manual and timed":       `{"spec":{"strategy":{"steps":null,"blueGreen":{"autoPromotionEnabled":false,"autoPromotionSeconds":30}}}}`,
	"header step, no router": `{"spec":{"router":{"gatewayAPI":null},"strategy":{"steps":[{"setHeaderRoute":{"match":[{"name":"x","exact":"1"}]}}]}}}`,
	"decreasing weights":     `{"spec":{"strategy":{"steps":[{"setWeight":50},{"setWeight":20}]}}}`,
	"weight above 100":       `{"spec":{"strategy":{"steps":[{"setWeight":120}]}}}`,
	"two actions":            `{"spec":{"strategy":{"steps":[{"setWeight":10,"pause":{}}]}}}`,
	"bad duration":           `{"spec":{"progressDeadline":"ten minutes"}}`,
	"webhook without scheme": `{"spec":{"analysis":{"webhooks":[{"name":"g","type":"confirm-rollout","url":"gates.example.com"}]}}}`,
	"unknown webhook type":   `{"spec":{"analysis":{"webhooks":[{"name":"g","type":"confirm","url":"http://g/"}]}}}`,
	"builtin without bound":  `{"spec":{"analysis":{"metrics":[{"name":"request-success-rate"}]}}}`,
	"port out of range":      `{"spec":{"service":{"port":70000}}}`,

	// Header regexes, checked by running them.
	"header regex that does not compile":  `{"spec":{"strategy":{"steps":[{"setWeight":10},{"setHeaderRoute":{"match":[{"name":"x-a","regex":"a)|(b"}]}}]}}}`,
	"header regex with a (?<name>) group": `{"spec":{"strategy":{"steps":[{"setHeaderRoute":{"match":[{"name":"x-a","regex":"(?<v>beta)"}]}}]}}}`,
}

func mergeInto(t *testing.T, base, patch string) map[string]any {
	t.Helper()
	var obj, p map[string]any
	if err := yaml.Unmarshal([]byte(base), &obj); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatal(err)
	}
	var merge func(dst, src map[string]any)
	merge = func(dst, src map[string]any) {
		for k, v := range src {
			if v == nil { // as in a JSON merge patch
				delete(dst, k)
				continue
			}
			if sm, ok := v.(map[string]any); ok && len(sm) > 0 {
				if dm, ok := dst[k].(map[string]any); ok {
					merge(dm, sm)
					continue
				}
			}
			dst[k] = v
		}
	}
	merge(obj, p)
	return obj
}

func TestLintGivesTheApiserversMessages(t *testing.T) {
	cl := testenv.Get(t)
	if err := cl.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	ns := cl.Namespace(t)
	c, err := client.New(cl.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := newLinter(t)
	for name, patch := range badCanaries {
		t.Run(name, func(t *testing.T) {
			obj := mergeInto(t, fmt.Sprintf(goodCanary, ns), patch)
			doc, _ := yaml.Marshal(obj)
			findings, err := l.LintBytes(t.Context(), doc)
			if err != nil {
				t.Fatal(err)
			}
			var said []string
			for _, f := range findings {
				if !f.Warning {
					said = append(said, f.Message)
				}
			}
			if len(said) == 0 {
				t.Fatalf("lint found nothing wrong")
			}
			u := &unstructured.Unstructured{Object: obj}
			err = c.Create(t.Context(), u, client.DryRunAll)
			var se *apierrors.StatusError
			if !errors.As(err, &se) || !apierrors.IsInvalid(err) || se.ErrStatus.Details == nil {
				t.Fatalf("the apiserver accepted it or failed otherwise: %v", err)
			}
			for _, cause := range se.ErrStatus.Details.Causes {
				want := cause.Message
				if cause.Field != "" {
					want = cause.Field + ": " + want
				}
				found := false
				for _, s := range said {
					found = found || s == want
				}
				if !found {
					t.Errorf("the apiserver says\n  %s\nlint says\n  %s", want, strings.Join(said, "\n  "))
				}
			}
		})
	}
}

// A misspelt field is an error, not the silence the apiserver answers.
func TestUnknownFieldsAreReported(t *testing.T) {
	l := newLinter(t)
	doc := fmt.Sprintf(goodCanary, "shop") + "  analysis:\n    metric:\n    - name: request-success-rate\n  progresDeadline: 5m\n"
	findings, err := l.LintBytes(context.Background(), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	joined := fmt.Sprint(findings)
	for _, want := range []string{"spec.analysis.metric: unknown field", "spec.progresDeadline: unknown field", "Canary/web: error"} {
		if !strings.Contains(joined, want) {
			t.Errorf("findings %s lack %q", joined, want)
		}
	}
}

// Sluice's own rules warn about what the apiserver accepts but would not
// work as meant.
func TestSluiceRules(t *testing.T) {
	l := newLinter(t)
	for _, tc := range []struct {
		patch, want string
	}{
		{`{"spec":{"strategy":{"steps":[{"pause":{"duration":"1m"}}]}}}`, "no step sends traffic to the canary"},
		{`{"spec":{"progressDeadline":"30s","analysis":{"interval":"1m","metrics":[{"name":"request-success-rate","thresholdRange":{"min":99}}]}}}`,
			"spec.progressDeadline (30s) is not longer than spec.analysis.interval (1m0s)"},
		{`{"spec":{"router":{"gatewayAPI":null,"consul":{}},"strategy":{"steps":[{"setWeight":10},{"setHeaderRoute":{"match":[{"name":"x-s","regex":"[a-z0-9]{64}"}]}}]}}}`,
			"spec.strategy.steps[1].setHeaderRoute.match[0].regex: \"[a-z0-9]{64}\" compiles to an RE2 program of at least 129 instructions, and Envoy refuses a route whose regex is above 100"},
		{`{"spec":{"router":{"gatewayAPI":null,"ambassador":{"mappings":["web"]}},"strategy":{"steps":[{"setWeight":10},{"setHeaderRoute":{"match":[{"name":"x-s","regex":"x{250}"}]}}]}}}`,
			"above 200"},
	} {
		obj := mergeInto(t, fmt.Sprintf(goodCanary, "shop"), tc.patch)
		doc, _ := yaml.Marshal(obj)
		findings, err := l.LintBytes(context.Background(), doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(findings) != 1 || !findings[0].Warning || !strings.Contains(findings[0].Message, tc.want) {
			t.Errorf("%s: findings %v, want one warning containing %q", tc.patch, findings, tc.want)
		}
	}
	// Other kinds in the same stream are skipped; a good Canary has nothing.
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + fmt.Sprintf(goodCanary, "shop")
	if findings, err := l.LintBytes(context.Background(), []byte(doc)); err != nil || len(findings) != 0 {
		t.Errorf("findings %v, %v; want none", findings, err)
	}
}

// A successCondition or failureCondition that does not compile is an
// error: the apiserver accepts any string there, and the controller would
// stall the Canary on it. Every bad one is named with its metric.
func TestBadConditionsAreErrors(t *testing.T) {
	l := newLinter(t)
	patch := `{"spec":{"analysis":{"metrics":[
		{"name":"request-success-rate","successCondition":"result >= 99"},
		{"name":"error-rate","templateRef":{"name":"errors"},"successCondition":"result >>> 2","failureCondition":"result + 1"}]}}}`
	obj := mergeInto(t, fmt.Sprintf(goodCanary, "shop"), patch)
	doc, _ := yaml.Marshal(obj)
	findings, err := l.LintBytes(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Canary/web: error: spec.analysis.metrics[1] (error-rate).successCondition "result >>> 2": unexpected token Operator(">") (1:9)`,
		`Canary/web: error: spec.analysis.metrics[1] (error-rate).failureCondition "result + 1": expected bool, but got float64`,
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
