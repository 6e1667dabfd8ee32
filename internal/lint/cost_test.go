package lint

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// What validating one status update of a Canary costs the apiserver: its
// schema and the CEL rules (all on the spec, evaluated again on every
// status update, with the old object for ratcheting), for the examples'
// Canaries. Run: go test -run '^$' -bench StatusUpdate ./internal/lint
func BenchmarkStatusUpdateValidation(b *testing.B) {
	l, err := New()
	if err != nil {
		b.Fatal(err)
	}
	k := l.kinds["sluice.dev/v1alpha1/Canary"]
	for _, file := range []string{"traefik/traefikservice.yaml", "gateway-api/podinfo.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "examples", file))
		if err != nil {
			b.Fatal(err)
		}
		var obj map[string]any
		for _, doc := range strings.Split(string(raw), "\n---") {
			var o map[string]any
			j, err := yaml.YAMLToJSON([]byte(doc))
			if err == nil && utiljson.Unmarshal(j, &o) == nil && o["kind"] == "Canary" {
				obj = o
			}
		}
		if obj == nil {
			b.Fatalf("%s: no Canary", file)
		}
		obj["status"] = map[string]any{"phase": "Progressing", "canaryWeight": int64(20), "currentStep": int64(2), "message": "step 2: holding 20% for 1m"}
		old := deepCopy(obj)
		old["status"].(map[string]any)["canaryWeight"] = int64(10)
		ctx := context.Background()
		b.Run(file+"/schema", func(b *testing.B) {
			for b.Loop() {
				_ = apiservervalidation.ValidateCustomResource(nil, obj, k.validator)
			}
		})
		b.Run(file+"/cel", func(b *testing.B) {
			for b.Loop() {
				errs, _ := k.cel.Validate(ctx, nil, k.structural, obj, old, celconfig.RuntimeCELCostBudget, cel.WithRatcheting(nil))
				if len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}

func deepCopy(m map[string]any) map[string]any {
	raw, _ := json.Marshal(m)
	var out map[string]any
	_ = utiljson.Unmarshal(raw, &out)
	return out
}
