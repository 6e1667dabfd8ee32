package v1alpha1_test

import (
	"fmt"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	crds "github.com/sluice-dev/sluice/config/crd/bases"
)

// The CRD repeats two defaults in its markers (a kubebuilder default and
// a CEL rule), where the Go constants cannot be named: they must agree.
func TestCRDAgreesWithDefaults(t *testing.T) {
	b, err := crds.FS.ReadFile("sluice.dev_canaries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]

	hookType := spec.Properties["analysis"].Properties["webhooks"].Items.Schema.Properties["type"]
	if hookType.Default == nil || string(hookType.Default.Raw) != fmt.Sprintf("%q", v1alpha1.DefaultWebhookType) {
		t.Errorf("spec.analysis.webhooks[].type default = %v, want %q", hookType.Default, v1alpha1.DefaultWebhookType)
	}

	want := fmt.Sprintf("self.maxWeight : %d", v1alpha1.DefaultMaxWeight)
	found := false
	for _, r := range spec.Properties["strategy"].XValidations {
		found = found || strings.Contains(r.Rule, want)
	}
	if !found {
		t.Errorf("no spec.strategy rule defaults maxWeight as %q (DefaultMaxWeight)", want)
	}
}
