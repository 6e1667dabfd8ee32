// Command istiocheck validates Istio configuration with Istio's own code:
// the conversion istiod applies to a VirtualService or DestinationRule
// read from the apiserver (pilot/pkg/config/kube/crd) and the validation
// its admission webhook runs (pkg/config/validation, through the
// resource schema), at the istio.io/istio commit go.mod names. Sluice's
// Istio router tests drive it: one Kubernetes object as JSON per line on
// stdin, one answer per line on stdout.
//
//	in:  {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", ...}
//	out: {"warnings": "..."}  or  {"error": "..."}  or  {}
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
)

type answer struct {
	Warnings string `json:"warnings,omitempty"`
	Error    string `json:"error,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		_ = out.Encode(check(in.Bytes()))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "istiocheck:", err)
		os.Exit(1)
	}
}

func check(line []byte) answer {
	var obj crd.IstioKind
	if err := json.Unmarshal(line, &obj); err != nil {
		return answer{Error: "bad object: " + err.Error()}
	}
	gvk := obj.GroupVersionKind()
	s, ok := collections.Pilot.FindByGroupVersionAliasesKind(resource.FromKubernetesGVK(&gvk))
	if !ok {
		return answer{Error: fmt.Sprintf("istiod does not know %s", gvk)}
	}
	cfg, err := crd.ConvertObject(s, &obj, "cluster.local")
	if err != nil {
		return answer{Error: "istiod cannot read it: " + err.Error()}
	}
	warn, err := s.ValidateConfig(*cfg)
	a := answer{}
	if warn != nil {
		a.Warnings = warn.Error()
	}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}
