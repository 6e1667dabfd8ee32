package controller_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/nginx"
)

// A release through ingress-nginx's canary annotations, on the real
// Ingress API (no ingress-nginx runs here): the canary Ingress beside the
// user's walks the weights, every version recorded, and ends at 0.
func TestNGINXRelease(t *testing.T) {
	_, ns, cl := setup(t)
	prefix := networkingv1.PathTypePrefix
	create(t, cl, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: ns},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), Rules: []networkingv1.IngressRule{{
			Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			}},
		}}},
	})
	cv := canary(ns, "shop", weightStep(20), pauseStep(time.Second), weightStep(60), pauseStep(time.Second))
	cv.Spec.Router = v1alpha1.RouterSpec{NGINX: &v1alpha1.NGINXRouter{Ingress: "front"}}
	create(t, cl, app(ns, "shop", "example.com/shop:1", 1), cv)
	waitPhase(t, cl, ns, "shop", v1alpha1.PhaseInitialized, 60*time.Second)

	rec := recordStates(t, &networkingv1.IngressList{}, func() client.Object { return &networkingv1.Ingress{} }, ns, "front-canary",
		func(o client.Object) (int, bool) {
			in, ok := o.(*networkingv1.Ingress)
			if !ok || in == nil {
				return -1, true
			}
			w, err := strconv.Atoi(in.Annotations[nginx.AnnotationWeight])
			return w, err == nil
		})
	setImage(t, cl, ns, "shop", "example.com/shop:2")
	waitPhase(t, cl, ns, "shop", v1alpha1.PhaseSucceeded, 60*time.Second)
	if got, want := rec.states(), []int{0, 20, 60, 100, 0}; !slices.Equal(got, want) {
		t.Errorf("canary Ingress weights %v, want %v", got, want)
	}
}
