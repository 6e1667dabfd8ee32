package autoscaling_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// The external metrics API the HPA controller reads. Nothing here produces
// metrics (no Prometheus adapter, no KEDA metrics server runs), so the
// test serves external.metrics.k8s.io/v1beta1 itself, as such an adapter
// does, through the real aggregation layer of the real kube-apiserver: an
// APIService pointing at an ExternalName Service that names 127.0.0.1,
// where this server listens with a self-signed certificate
// (insecureSkipTLSVerify). The value of each metric is what the test sets.

const (
	metricsGroupVersion = "external.metrics.k8s.io/v1beta1"
	apiServiceName      = "v1beta1.external.metrics.k8s.io"
	metricsNamespace    = "sluice-test-metrics"
)

// metricsAPI serves external metrics: namespace/name -> value.
type metricsAPI struct {
	mu     sync.Mutex
	values map[string]int64
	reads  map[string]int
}

func (m *metricsAPI) set(ns, name string, v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[ns+"/"+name] = v
}

func (m *metricsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := "/apis/" + metricsGroupVersion
	switch {
	case r.URL.Path == base:
		writeJSON(w, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": metricsGroupVersion,
			"resources": []map[string]any{{"name": "*", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": []string{"get"}}}})
	case strings.HasPrefix(r.URL.Path, base+"/namespaces/"):
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, base+"/namespaces/"), "/")
		if len(parts) != 2 {
			http.NotFound(w, r)
			return
		}
		key := parts[0] + "/" + parts[1]
		m.mu.Lock()
		v, ok := m.values[key]
		m.reads[key]++
		m.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			writeJSON(w, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
				"message": fmt.Sprintf("no metric %s", key)})
			return
		}
		writeJSON(w, map[string]any{"kind": "ExternalMetricValueList", "apiVersion": metricsGroupVersion, "metadata": map[string]any{},
			"items": []map[string]any{{"metricName": parts[1], "metricLabels": map[string]string{},
				"timestamp": time.Now().UTC().Format(time.RFC3339), "value": strconv.FormatInt(v, 10)}}})
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serveMetrics starts the metrics API and registers it with the
// apiserver until the test ends (an APIService left behind would break
// discovery for every client, so a stale one is replaced first and this
// one deleted at the end).
func serveMetrics(t *testing.T, cl client.Client) *metricsAPI {
	t.Helper()
	m := &metricsAPI{values: map[string]int64{}, reads: map[string]int{}}
	cert := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	port := ln.Addr().(*net.TCPAddr).Port

	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metricsNamespace}}
	if err := cl.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "external-metrics", Namespace: metricsNamespace},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"}}
	if err := cl.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	apiSvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": apiServiceName},
		"spec": map[string]any{"group": "external.metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": true,
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			"service": map[string]any{"namespace": metricsNamespace, "name": "external-metrics", "port": int64(port)}},
	}}
	_ = cl.Delete(ctx, apiSvc.DeepCopy())
	testenv.Eventually(t, 30*time.Second, "the stale APIService gone", func(ctx context.Context) error {
		probe := &unstructured.Unstructured{}
		probe.SetGroupVersionKind(apiSvc.GroupVersionKind())
		if err := cl.Get(ctx, client.ObjectKey{Name: apiServiceName}, probe); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	if err := cl.Create(ctx, apiSvc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.Delete(ctx, apiSvc); client.IgnoreNotFound(err) != nil {
			t.Errorf("delete APIService %s: %v", apiServiceName, err)
		}
		_ = srv.Close()
	})
	testenv.Eventually(t, 60*time.Second, "APIService "+apiServiceName+" Available", func(ctx context.Context) error {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(apiSvc.GroupVersionKind())
		if err := cl.Get(ctx, client.ObjectKey{Name: apiServiceName}, got); err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == "Available" {
				if cm["status"] == "True" {
					return nil
				}
				return fmt.Errorf("Available=%v: %v", cm["status"], cm["message"])
			}
		}
		return fmt.Errorf("no Available condition yet")
	})
	return m
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "external-metrics"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
