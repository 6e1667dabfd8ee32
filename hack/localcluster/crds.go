package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
)

// crdSource is one file of CRDs inside a Go module, as its project publishes it.
type crdSource struct {
	module, version, path string
	// keep filters the CRDs of the file; nil keeps all.
	keep func(*apiextensionsv1.CustomResourceDefinition) bool
	// patch adapts a CRD to a cluster without the project's webhooks.
	patch func(*apiextensionsv1.CustomResourceDefinition)
	// noSumDB: the checksum database does not know this module.
	noSumDB bool
}

func routerCRDSources(gatewayChannel string) []crdSource {
	gw := func(kind string) crdSource {
		return crdSource{module: "sigs.k8s.io/gateway-api", version: "v1.6.3",
			path: "config/crd/" + gatewayChannel + "/gateway.networking.k8s.io_" + kind + ".yaml"}
	}
	group := func(g string) func(*apiextensionsv1.CustomResourceDefinition) bool {
		return func(c *apiextensionsv1.CustomResourceDefinition) bool { return c.Spec.Group == g }
	}
	consul := func(kind string) crdSource {
		return crdSource{module: "github.com/hashicorp/consul-k8s", version: "v0.26.0",
			path: "config/crd/bases/consul.hashicorp.com_" + kind + ".yaml", noSumDB: true}
	}
	return []crdSource{
		gw("gatewayclasses"), gw("gateways"), gw("httproutes"), gw("grpcroutes"), gw("referencegrants"),
		// The rest of the standard channel: Traefik's Gateway API provider
		// watches BackendTLSPolicy and will not start without it.
		gw("backendtlspolicies"), gw("listenersets"), gw("tlsroutes"), gw("tcproutes"), gw("udproutes"),
		// Traefik v3 serves traefik.io only; v2.11 serves both groups, of
		// which the legacy traefik.containo.us one is taken from it.
		{module: "github.com/traefik/traefik/v3", version: "v3.6.12",
			path: "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"},
		{module: "github.com/traefik/traefik/v2", version: "v2.11.0",
			path: "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml",
			keep: group("traefik.containo.us")},
		// Emissary converts between its versions with a webhook that does not
		// run here; v2 (storage) preserves unknown fields, so None loses nothing.
		{module: "github.com/emissary-ingress/emissary/v3", version: "v3.10.0",
			path: "test/apiext/testdata/crds.yaml",
			patch: func(c *apiextensionsv1.CustomResourceDefinition) {
				c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter}
			}},
		consul("serviceresolvers"), consul("servicesplitters"), consul("servicerouters"),
		{module: "istio.io/api", version: "v1.31.1", path: "kubernetes/customresourcedefinitions.gen.yaml"},
		{module: "github.com/openservicemesh/osm", version: "v1.2.4", path: "cmd/osm-bootstrap/crds/smi_traffic_split.yaml"},
		// Not a router: KEDA's ScaledObject, which spec.autoscalerRef may name.
		// No KEDA operator runs here; the CRD gives its validation.
		{module: "github.com/kedacore/keda/v2", version: "v2.21.0", path: "config/crd/bases/keda.sh_scaledobjects.yaml"},
	}
}

func runInstallCRDs(args []string) int {
	fs := flag.NewFlagSet("install-crds", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the target cluster")
	channel := fs.String("gateway-channel", "standard", "Gateway API channel: standard or experimental")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := installCRDs(ctx, *kubeconfig, *channel); err != nil {
		fmt.Fprintln(os.Stderr, "install-crds:", err)
		return 1
	}
	return 0
}

// installCRDs reads each router's CRDs from its Go module (downloaded into
// the module cache by the go command), applies them with server-side apply
// and waits until every one is Established.
func installCRDs(ctx context.Context, kubeconfig, channel string) error {
	if channel != "standard" && channel != "experimental" {
		return fmt.Errorf("gateway channel %q: want standard or experimental", channel)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	client, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	sources := routerCRDSources(channel)
	dirs, err := moduleDirs(ctx, sources)
	if err != nil {
		return err
	}
	var names []string
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []string
		workers = make(chan struct{}, 8)
	)
	for _, src := range sources {
		crds, err := src.load(dirs[src.module+"@"+src.version])
		if err != nil {
			return err
		}
		for _, crd := range crds {
			names = append(names, crd.Name)
			wg.Add(1)
			workers <- struct{}{}
			go func() {
				defer func() { <-workers; wg.Done() }()
				if err := applyCRD(ctx, client, crd); err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s@%s %s: %v", src.module, src.version, crd.Name, err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		return fmt.Errorf("apply CRDs: %s", strings.Join(failed, "; "))
	}
	// Wait for all of them at once.
	err = waitFor(ctx, "router CRDs established", time.Minute, func(ctx context.Context) error {
		list, err := client.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		established := map[string]bool{}
		for _, crd := range list.Items {
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					established[crd.Name] = true
				}
			}
		}
		for _, n := range names {
			if !established[n] {
				return fmt.Errorf("%s not Established", n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("installed %d router CRDs\n", len(names))
	return nil
}

func applyCRD(ctx context.Context, client apiextensions.Interface, crd *apiextensionsv1.CustomResourceDefinition) error {
	crd.TypeMeta = metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"}
	crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	crd.CreationTimestamp = metav1.Time{}
	body, err := json.Marshal(crd)
	if err != nil {
		return err
	}
	force := true
	_, err = client.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: "localcluster", Force: &force})
	return err
}

// load decodes the CRDs of the source's file in its module folder dir.
func (s crdSource) load(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	if dir == "" {
		return nil, fmt.Errorf("module %s@%s was not downloaded", s.module, s.version)
	}
	f, err := os.Open(filepath.Join(dir, s.path))
	if err != nil {
		return nil, fmt.Errorf("open CRD file of %s@%s: %w", s.module, s.version, err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 64*1024)
	var out []*apiextensionsv1.CustomResourceDefinition
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decode %s in %s@%s: %w", s.path, s.module, s.version, err)
		}
		if raw["kind"] != "CustomResourceDefinition" {
			continue
		}
		if raw["apiVersion"] != "apiextensions.k8s.io/v1" {
			return nil, fmt.Errorf("%s in %s@%s: CRD with apiVersion %v, want apiextensions.k8s.io/v1", s.path, s.module, s.version, raw["apiVersion"])
		}
		b, _ := json.Marshal(raw)
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := json.Unmarshal(b, crd); err != nil {
			return nil, fmt.Errorf("decode CRD in %s@%s: %w", s.module, s.version, err)
		}
		if s.keep != nil && !s.keep(crd) {
			continue
		}
		if s.patch != nil {
			s.patch(crd)
		}
		out = append(out, crd)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRDs in %s of %s@%s", s.path, s.module, s.version)
	}
	return out, nil
}

// moduleDirs returns the module cache folder of every source's module
// ("path@version" -> folder), downloading what is missing through the Go
// module proxy in one go command.
func moduleDirs(ctx context.Context, sources []crdSource) (map[string]string, error) {
	args := []string{"mod", "download", "-json"}
	seen := map[string]bool{}
	noSumDB := os.Getenv("GONOSUMDB")
	for _, s := range sources {
		mv := s.module + "@" + s.version
		if !seen[mv] {
			seen[mv] = true
			args = append(args, mv)
		}
		if s.noSumDB {
			noSumDB = strings.TrimPrefix(noSumDB+","+s.module, ",")
		}
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = os.TempDir() // outside any module: nothing's go.mod is touched
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on", "GONOSUMDB="+noSumDB)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	dirs := map[string]string{}
	dec := json.NewDecoder(&stdout)
	var problems []string
	for {
		var info struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&info); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("go mod download: decode: %w", err)
		}
		if info.Error != "" {
			problems = append(problems, info.Path+"@"+info.Version+": "+info.Error)
			continue
		}
		dirs[info.Path+"@"+info.Version] = info.Dir
	}
	if runErr != nil || len(problems) > 0 {
		return nil, fmt.Errorf("go mod download: %v: %s %s", runErr, strings.Join(problems, "; "), stderr.String())
	}
	return dirs, nil
}
