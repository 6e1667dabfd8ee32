package playground

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// AsExpected says whether the good release was promoted and the bad one
// rolled back.
func (s *Summary) AsExpected() bool {
	return s != nil && len(s.Releases) == 2 &&
		s.Releases[0].Phase == v1alpha1.PhaseSucceeded && s.Releases[1].Phase == v1alpha1.PhaseFailed
}

// PrintSummary prints the outcome and how to explore further.
func PrintSummary(w io.Writer, root string, s *Summary, took time.Duration, running bool) {
	fmt.Fprintf(w, "\n== summary (%s in all)\n", took.Round(time.Second))
	total, failed := 0, 0
	for _, r := range s.Releases {
		fmt.Fprintf(w, "  release %s: %-9s in %3.0fs  %5d requests, %4d answered by %s, %3d failed as users saw them  (%s)\n",
			r.Version, r.Phase, r.Took.Seconds(), r.Requests, r.Served, r.Version, r.Failures, r.Message)
		total += r.Requests
		failed += r.Failures
	}
	fmt.Fprintf(w, "  %d requests through Traefik during the releases, %d failed\n", total, failed)
	kubeconfig := filepath.Join(root, ".local", "kubeconfig")
	fmt.Fprintf(w, "\n== explore\n")
	fmt.Fprintf(w, "  export KUBECONFIG=%s\n", kubeconfig)
	fmt.Fprintf(w, "  bin/localcluster kubectl -n %s get canary,canaryrevisions,deploy,svc,ingressroute\n", Namespace)
	fmt.Fprintf(w, "  bin/kubectl-sluice -n %s history %s\n", Namespace, App)
	if running {
		fmt.Fprintf(w, "  Everything keeps running until Ctrl-C. Meanwhile:\n")
		fmt.Fprintf(w, "  curl -H 'Host: %s' http://%s/          # through Traefik; the X-Version header says who answered\n", Host, WebAddr)
		fmt.Fprintf(w, "  bin/kubectl-sluice -n %s get %s --watch   # in a second terminal\n", Namespace, App)
		fmt.Fprintf(w, "  bin/kubectl-sluice -n %s dashboard         # the same in a browser: http://127.0.0.1:3100/\n", Namespace)
		fmt.Fprintf(w, "  bin/localcluster kubectl -n %s set env deployment/%s VERSION=6.8.0   # a release by hand (ERROR_RATE=0.5 for a bad one)\n", Namespace, App)
		fmt.Fprintf(w, "  Prometheus: http://%s  (traefik_service_requests_total)\n", PromAddr)
	} else {
		fmt.Fprintf(w, "  make demo runs it again; run it from a terminal to keep Traefik, Prometheus and the controller up afterwards.\n")
	}
}
