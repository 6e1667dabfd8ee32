package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/consul"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// A header regex Consul's Envoy proxies would refuse (its RE2 program is
// above Envoy's default limit of 100, though Consul itself takes the
// ServiceRouter and consul-k8s marks it Synced): the release holds at the
// header step with InvalidHeaderRegex naming the field, no ServiceRouter
// is written and no traffic moves; once the regex is simplified, the
// release goes on.
func TestConsulHeaderRegexEnvoyWouldRefuse(t *testing.T) {
	_, ns, cl := setup(t)
	big := "[a-z0-9]{64}" // RE2 program size 132
	c := canary(ns, "rgx",
		v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-session", Regex: &big}}}},
		weightStep(50))
	c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{WaitForSync: ptr.To(false)}}
	create(t, cl, consulApp(ns, "rgx", "example.com/rgx:1", 1, "rgx"), c)
	waitPhase(t, cl, ns, "rgx", v1alpha1.PhaseInitialized, 60*time.Second)

	setImage(t, cl, ns, "rgx", "example.com/rgx:2")
	testenv.Eventually(t, 30*time.Second, "the release held with the field named", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, "rgx")
		if err != nil {
			return err
		}
		if got.Status.Reason != "InvalidHeaderRegex" || !strings.Contains(got.Status.Message, "spec.strategy.steps[0].setHeaderRoute.match[0].regex:") ||
			!strings.Contains(got.Status.Message, "above 100") {
			return fmt.Errorf("%s %s: %s", got.Status.Phase, got.Status.Reason, got.Status.Message)
		}
		return nil
	})
	if rt, err := consulEntry(t.Context(), cl, consul.Routes, ns, "rgx"); rt != nil || err != nil {
		t.Fatalf("a ServiceRouter was written with a regex Envoy refuses (%v)", err)
	}
	if w := canarySplit(t.Context(), cl, ns, "rgx"); w > 0 {
		t.Fatalf("the canary subset got %d%% while the release is held", w)
	}

	got, err := getCanary(t.Context(), cl, ns, "rgx")
	if err != nil {
		t.Fatal(err)
	}
	small := "[a-z0-9]{16}"
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Strategy.Steps[0].SetHeaderRoute.Match[0].Regex = &small
	if err := cl.Patch(t.Context(), got, patch); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, ns, "rgx", v1alpha1.PhaseSucceeded, 90*time.Second)
}
