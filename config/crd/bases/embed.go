// Package bases carries Sluice's generated CRDs, for tools that need them
// without a cluster (kubectl sluice lint).
package bases

import "embed"

// FS holds the CRD manifests.
//
//go:embed *.yaml
var FS embed.FS
