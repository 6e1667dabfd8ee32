package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/internal/controller"
)

// InstallSluiceCRDs applies config/crd/bases (Sluice's generated CRDs) with
// server-side apply, as `make install` does, and waits until they serve.
func (c *Cluster) InstallSluiceCRDs() error {
	files, err := filepath.Glob(filepath.Join(c.Root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in config/crd/bases (run make generate): %v", err)
	}
	return c.InstallCRDFiles(files)
}

// InstallCRDFiles applies the CRDs in the files (YAML, several documents
// each allowed) with server-side apply, and waits until each serves.
func (c *Cluster) InstallCRDFiles(files []string) error {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := dec.Decode(crd); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("decode %s: %w", f, err)
			}
			if crd.Name == "" {
				continue // an empty document
			}
			if err := applyCRD(cl, crd); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return nil
}

func applyCRD(cl client.Client, crd *apiextensionsv1.CustomResourceDefinition) error {
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	crd.ResourceVersion, crd.Status = "", apiextensionsv1.CustomResourceDefinitionStatus{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := cl.Patch(ctx, crd, client.Apply, client.FieldOwner("sluice-test"), client.ForceOwnership)
	cancel()
	if err != nil {
		return fmt.Errorf("apply CRD %s: %w", crd.Name, err)
	}
	err = Poll(30*time.Second, func(ctx context.Context) error {
		var got apiextensionsv1.CustomResourceDefinition
		if err := cl.Get(ctx, client.ObjectKeyFromObject(crd), &got); err != nil {
			return err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not established")
	})
	if err != nil {
		return fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	return nil
}

// SluiceClient installs Sluice's CRDs and returns a direct client (no
// cache) whose scheme knows the core kinds, Gateway API's and Sluice's.
func (c *Cluster) SluiceClient(t testing.TB) client.Client {
	t.Helper()
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	scheme, err := controller.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
