// Package lint checks Sluice manifests offline the way the apiserver
// would: unknown fields (which the apiserver drops without a word),
// defaults, the CRD's OpenAPI schema and its CEL rules, from the same CRDs
// the cluster runs (embedded) and with the apiserver's own validation code,
// so the messages are the ones `kubectl apply` prints. It then adds Sluice's
// own rules, which need the whole object rather than one field.
package lint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	crds "github.com/sluice-dev/sluice/config/crd/bases"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/routers"
)

// Finding is one problem in one object.
type Finding struct {
	// Object is "Kind/name" (or "document N" when it has neither).
	Object string
	// Message names the field and what to do, as the apiserver says it.
	Message string
	// Warning is true for a finding the apiserver would accept and the
	// controller would run with. An error is one the apiserver rejects,
	// or one the controller would stall the Canary on (a condition that
	// does not compile).
	Warning bool
}

func (f Finding) String() string {
	level := "error"
	if f.Warning {
		level = "warning"
	}
	return fmt.Sprintf("%s: %s: %s", f.Object, level, f.Message)
}

type kindSchema struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaCreateValidator
	cel        *cel.Validator
}

// Linter holds the compiled schemas of Sluice's kinds.
type Linter struct {
	kinds map[string]kindSchema // "apiVersion/kind"
}

// New compiles the embedded CRDs.
func New() (*Linter, error) {
	l := &Linter{kinds: map[string]kindSchema{}}
	err := fs.WalkDir(crds.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := crds.FS.ReadFile(path)
		if err != nil {
			return err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			return fmt.Errorf("crd %s: %w", path, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			var internal apiextensionsinternal.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				return fmt.Errorf("crd %s version %s: %w", crd.Name, v.Name, err)
			}
			s, err := structuralschema.NewStructural(&internal)
			if err != nil {
				return fmt.Errorf("crd %s version %s: structural schema: %w", crd.Name, v.Name, err)
			}
			validator, _, err := apiservervalidation.NewSchemaValidator(&internal)
			if err != nil {
				return fmt.Errorf("crd %s version %s: validator: %w", crd.Name, v.Name, err)
			}
			l.kinds[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = kindSchema{
				structural: s, validator: validator,
				cel: cel.NewValidator(s, true, celconfig.PerCallLimit),
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Lint checks every document of a (multi-document) YAML or JSON stream.
// Documents of other kinds are skipped. It returns an error only when the
// input cannot be read at all.
func (l *Linter) Lint(ctx context.Context, r io.Reader) ([]Finding, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []Finding
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("document %d: %w", n, err)
		}
		// Numbers as the apiserver reads them: int64 when integral.
		var obj map[string]any
		if err := utiljson.Unmarshal(raw, &obj); err != nil {
			return out, fmt.Errorf("document %d: %w", n, err)
		}
		if obj == nil {
			continue
		}
		out = append(out, l.lintObject(ctx, n, obj)...)
	}
}

func (l *Linter) lintObject(ctx context.Context, n int, obj map[string]any) []Finding {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	name := fmt.Sprintf("document %d", n)
	if md, ok := obj["metadata"].(map[string]any); ok {
		if nm, ok := md["name"].(string); ok && kind != "" {
			name = kind + "/" + nm
		}
	}
	k, ok := l.kinds[apiVersion+"/"+kind]
	if !ok {
		if strings.HasPrefix(apiVersion, v1alpha1.GroupVersion.Group+"/") {
			return []Finding{{Object: name, Message: fmt.Sprintf("apiVersion %s kind %s: not a Sluice kind (Canary, MetricTemplate or AlertProvider in %s)", apiVersion, kind, v1alpha1.GroupVersion)}}
		}
		return nil // not ours
	}
	var out []Finding
	add := func(warning bool, msg string) {
		out = append(out, Finding{Object: name, Message: msg, Warning: warning})
	}

	// The apiserver prunes unknown fields without an error; say so.
	for _, p := range pruning.PruneWithOptions(obj, k.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		add(false, fmt.Sprintf("%s: unknown field (the apiserver would drop it silently; check its spelling and place)", p))
	}
	structuraldefaulting.Default(obj, k.structural)
	// The apiserver's order: schema, list types, then the CEL rules unless
	// an error above makes them meaningless.
	errs := apiservervalidation.ValidateCustomResource(nil, obj, k.validator)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, k.structural, obj)...)
	if blocking(errs) {
		errs = append(errs, field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"))
	} else {
		celErrs, _ := k.cel.Validate(ctx, nil, k.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	if md, ok := obj["metadata"].(map[string]any); !ok || md["name"] == nil {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name is required"))
	}
	for _, e := range errs {
		add(false, e.Error())
	}
	if len(errs) == 0 && kind == "Canary" {
		out = append(out, canaryRules(name, obj)...)
	}
	return out
}

// blocking says whether errs keep the apiserver from running CEL rules.
func blocking(errs field.ErrorList) bool {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}

// canaryRules are Sluice's rules over a whole valid Canary: what the
// apiserver accepts but would not work as the user expects (warnings), or
// not at all (errors: the controller would stall the Canary).
func canaryRules(name string, obj map[string]any) []Finding {
	var c v1alpha1.Canary
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &c); err != nil {
		return []Finding{{Object: name, Message: fmt.Sprintf("decode: %v", err)}}
	}
	var out []Finding
	warn := func(msg string) { out = append(out, Finding{Object: name, Message: msg, Warning: true}) }
	fail := func(msg string) { out = append(out, Finding{Object: name, Message: msg}) }
	if a := c.Spec.Analysis; a != nil {
		judge := analysis.NewJudge()
		for i, m := range a.Metrics {
			// The same compilation the controller runs before a release.
			for _, e := range judge.Validate(analysis.Check{SuccessCondition: m.SuccessCondition, FailureCondition: m.FailureCondition}) {
				fail(fmt.Sprintf("spec.analysis.metrics[%d] (%s).%v", i, m.Name, e))
			}
		}
	}
	steps := engine.Steps(c.Spec.Strategy)
	top := int32(0)
	for i := range steps {
		top = max(top, engine.WeightAt(steps, i))
	}
	if top == 0 {
		warn("spec.strategy: no step sends traffic to the canary, so nothing is measured before promotion; add a setWeight step")
	}
	deadline := c.Spec.GetProgressDeadline()
	if a := c.Spec.Analysis; a != nil && (len(a.Metrics) > 0 || engine.HasHooks(&c, v1alpha1.WebhookRollout) || engine.HasHooks(&c, v1alpha1.WebhookRollback)) {
		if iv := a.GetInterval(); iv >= deadline {
			warn(fmt.Sprintf("spec.progressDeadline (%s) is not longer than spec.analysis.interval (%s): a step waiting for its check round would time out; raise progressDeadline", deadline, iv))
		}
	}
	if msg := headerRegexProblem(&c); msg != "" {
		warn(msg)
	}
	for i, h := range webhooksOf(&c) {
		if h.Timeout != nil && h.Timeout.Duration > time.Minute {
			warn(fmt.Sprintf("spec.analysis.webhooks[%d].timeout %s: a hook this slow holds its gate or round that long on every attempt", i, h.Timeout.Duration))
		}
	}
	return out
}

// headerRegexProblem is what the Canary's router would say of the Canary
// before writing anything (router.Registration's Validate: the Stalled
// reason InvalidHeaderRegex): a header regex above the RE2 program size
// its Envoy accepts, or one Traefik would refuse.
func headerRegexProblem(c *v1alpha1.Canary) string {
	if validate := routers.All().For(c).Validate; validate != nil {
		_, msg := validate(c)
		return msg
	}
	return ""
}

func webhooksOf(c *v1alpha1.Canary) []v1alpha1.Webhook {
	if c.Spec.Analysis == nil {
		return nil
	}
	return c.Spec.Analysis.Webhooks
}

// LintBytes is Lint over a byte slice.
func (l *Linter) LintBytes(ctx context.Context, b []byte) ([]Finding, error) {
	return l.Lint(ctx, bytes.NewReader(b))
}
