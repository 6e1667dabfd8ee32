// Command kubectl-sluice is the kubectl plugin for Sluice: `kubectl sluice
// list|get|promote|abort|retry|pause|resume`. Exit codes: 0 ok, 1 error,
// 2 usage.
package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/sluice-dev/sluice/internal/cli"
)

func main() {
	root := cli.NewRoot(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var usage cli.UsageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
