package controller_test

import (
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// A mesh route (GAMMA: the HTTPRoute's parent is the apex Service) works
// as a Gateway's does: the route names the Service as its parent, and a
// step counts only once the mesh has accepted the route's current
// generation. No mesh runs on the local control plane; the test writes
// the route status a mesh's controller would (fakeParent), on the real
// Gateway API CRDs.
func TestMeshRouteWaitsForTheMeshToAccept(t *testing.T) {
	_, ns, cl := setup(t)
	cv := canary(ns, "east", weightStep(30), weightStep(60))
	apex := gwv1.ParentReference{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "east", Port: ptr.To(gwv1.PortNumber(80))}
	cv.Spec.Router.GatewayAPI = &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{apex}}
	create(t, cl, app(ns, "east", "example.com/east:1", 1), cv)
	var accept atomic.Bool
	accept.Store(true)
	fakeParent(t, cl, ns, "east", apex, "example.com/fake-mesh", "NotAllowed", &accept)
	waitPhase(t, cl, ns, "east", v1alpha1.PhaseInitialized, 60*time.Second)

	var route gwv1.HTTPRoute
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "east"}, &route); err != nil {
		t.Fatal(err)
	}
	if got := route.Spec.ParentRefs; len(got) != 1 || ptr.Deref(got[0].Kind, "") != "Service" || ptr.Deref(got[0].Group, "x") != "" ||
		got[0].Name != "east" || ptr.Deref(got[0].Port, 0) != 80 || len(route.Spec.Hostnames) != 0 {
		t.Fatalf("route parents %+v, hostnames %v: want the apex Service east:80 and no hostname", got, route.Spec.Hostnames)
	}
	expectSplit(t, cl, ns, "east", map[string]int32{"east-primary": 10000, "east-canary": 0})

	accept.Store(false)
	setImage(t, cl, ns, "east", "example.com/east:2")
	heldWhileRefused(t, cl, ns, "east", "parent east does not accept the route: NotAllowed")
	accept.Store(true)
	waitPhase(t, cl, ns, "east", v1alpha1.PhaseSucceeded, 60*time.Second)
	expectSplit(t, cl, ns, "east", map[string]int32{"east-primary": 10000, "east-canary": 0})
}
