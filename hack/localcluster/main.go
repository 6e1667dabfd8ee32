// Command localcluster runs a real, single-machine Kubernetes control plane for
// Sluice's tests and playground: etcd (embedded), kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok fake nodes, all from one
// binary, supervised by its "up" subcommand. The binary also carries kubectl
// built from the same Kubernetes version.
//
// Every component is the upstream code, called through its own cobra command;
// this file only dispatches on the first argument.
package main

import (
	"fmt"
	"os"

	_ "time/tzdata" // CronJob time zones, as in the upstream binaries

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `usage: localcluster <command> [flags]

commands:
  up                       run the whole control plane in the foreground (supervisor)
  kubectl ...              kubectl built from the same Kubernetes version
  install-crds             install the routers' CRDs (from their Go modules) into a cluster
  etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kwok
                           one component (the supervisor starts these itself)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name := os.Args[1]
	// Each component parses os.Args[1:] itself, as if it were its own binary.
	os.Args = os.Args[1:]
	switch name {
	case "up":
		os.Exit(runUp(os.Args[1:]))
	case "install-crds":
		os.Exit(runInstallCRDs(os.Args[1:]))
	case "etcd":
		os.Exit(runEtcd(os.Args[1:]))
	case "kwok":
		os.Exit(runKwok())
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubectl":
		command := kubectlcmd.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "localcluster: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
}
