package convert

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// TestOutputsPassTheAPIServer creates every output of the corpus with a
// server-side dry run on the local control plane: the CRDs' schema and
// CEL rules must accept each one. The hand-over objects (--handover) are
// among them.
func TestOutputsPassTheAPIServer(t *testing.T) {
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	ns := c.Namespace(t)
	n := 0
	for _, file := range corpus(t) {
		for _, o := range convertFileWith(t, file, Options{Handover: true}).Outputs {
			obj := o.Object.DeepCopyObject().(client.Object)
			obj.SetNamespace(ns)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.Create(ctx, obj, client.DryRunAll)
			cancel()
			if err != nil {
				t.Errorf("%s: %s %s converted from %s: %v", file, obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), o.From, err)
			}
			n++
		}
	}
	t.Logf("%d outputs accepted", n)
}
