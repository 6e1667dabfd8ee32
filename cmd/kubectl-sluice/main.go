// Command kubectl-sluice is the kubectl plugin for Sluice: `kubectl sluice
// list|get|promote|abort|retry|pause|resume|history|undo|dashboard|lint|convert|version`. Exit codes: 0
// ok, 1 error, 2 usage, 3 converted with source fields not carried.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/dashboard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := cli.NewRoot(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, dashboard.NewCommand)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var usage cli.UsageError
		var incomplete cli.IncompleteError
		if errors.As(err, &incomplete) {
			stop()
			os.Exit(3)
		}
		if errors.As(err, &usage) {
			stop()
			os.Exit(2)
		}
		stop()
		os.Exit(1)
	}
}
