package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/internal/workload"
)

// An informer may hand the transform an object it already stripped; the
// hash must stay the hash of the data, not become the hash of none.
func TestStripConfigDataIsIdempotent(t *testing.T) {
	cm := &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
	sec := &corev1.Secret{Data: map[string][]byte{"a": []byte("1")}}
	wantCM, wantSec := workload.ConfigMapHash(cm), workload.SecretHash(sec)
	for i := range 2 {
		if _, err := StripConfigData(cm); err != nil {
			t.Fatal(err)
		}
		if _, err := StripConfigData(sec); err != nil {
			t.Fatal(err)
		}
		if got := cm.Annotations[workload.DataHashAnnotation]; got != wantCM || cm.Data != nil {
			t.Errorf("configmap after %d strips: hash %s (want %s), data %v", i+1, got, wantCM, cm.Data)
		}
		if got := sec.Annotations[workload.DataHashAnnotation]; got != wantSec || sec.Data != nil {
			t.Errorf("secret after %d strips: hash %s (want %s), data %v", i+1, got, wantSec, sec.Data)
		}
	}
	empty := &corev1.ConfigMap{}
	if _, err := StripConfigData(empty); err != nil || empty.Annotations[workload.DataHashAnnotation] != workload.DataHash(nil) {
		t.Errorf("an empty ConfigMap: %v %v", empty.Annotations, err)
	}
}
