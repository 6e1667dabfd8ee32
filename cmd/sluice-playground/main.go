// Command sluice-playground is `make demo`: Sluice releasing a demo app
// through a real Traefik on the local control plane, a good version
// promoted and a bad one rolled back, with the traffic each version served.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/sluice-dev/sluice/internal/playground"
)

func main() {
	root := flag.String("root", ".", "repository root (bin/ and .local/ are under it)")
	scenario := flag.String("scenario", playground.ScenarioCanary, "how the demo app is released: canary or blue-green")
	stay := flag.Bool("stay", term.IsTerminal(int(os.Stdin.Fd())), "keep everything running after the releases until Ctrl-C (default: when run from a terminal)")
	flag.Parse()
	abs, err := filepath.Abs(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tty := term.IsTerminal(int(os.Stdout.Fd()))
	if tty {
		fmt.Print("\033[H\033[2J")
	}
	sum, err := playground.Run(ctx, playground.Options{Root: abs, Out: os.Stdout, TTY: tty, Stay: *stay, Scenario: *scenario})
	if err != nil {
		fmt.Fprintln(os.Stderr, "playground:", err)
		os.Exit(1)
	}
	if !sum.AsExpected() {
		fmt.Fprintln(os.Stderr, "playground: unexpected outcome (the good release must be promoted and the bad one rolled back)")
		os.Exit(1)
	}
}
