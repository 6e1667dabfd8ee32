package main

import (
	"os"
	"strings"

	"github.com/spf13/pflag"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	"sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

// kwokStages is the kwok configuration the supervisor writes for the fake
// nodes: kwok's own stock stages that initialise nodes, keep their leases
// fresh, and move scheduled pods to Running and Ready (and delete them).
//
// One addition for tests: a pod annotated NeverReadyAnnotation is scheduled
// and Running but never Ready (its container keeps crashing), as a broken
// release's pods would be. kwok's stock pod-ready stage skips such pods.
//
// And one for verification tests: a pod labelled UnreadyPrimaryLabel is
// never Ready when it also carries Sluice's sluice.dev/revision annotation
// (only Sluice's primary copy does), and Ready otherwise. A target whose
// new template carries the label therefore runs a Ready canary while its
// promoted primary never becomes Ready.
func kwokStages() string {
	expr := func(key, op string) string {
		return "    - key: '" + key + "'\n      operator: '" + op + "'\n"
	}
	annotation := `.metadata.annotations["` + NeverReadyAnnotation + `"]`
	label := `.metadata.labels["` + UnreadyPrimaryLabel + `"]`
	revision := `.metadata.annotations["sluice.dev/revision"]`
	withExprs := func(stage, name string, exprs ...string) string {
		out := strings.Replace(stage, "    matchExpressions:\n", "    matchExpressions:\n"+strings.Join(exprs, ""), 1)
		if name != "" {
			out = strings.Replace(out, "name: pod-ready\n", "name: "+name+"\n", 1)
		}
		return out
	}
	ready := withExprs(podfast.DefaultPodReady, "", expr(annotation, "DoesNotExist"), expr(label, "DoesNotExist"))
	readyUnlessPrimary := withExprs(podfast.DefaultPodReady, "pod-ready-unless-primary",
		expr(annotation, "DoesNotExist"), expr(label, "Exists"), expr(revision, "DoesNotExist"))
	neverReadyPrimary := strings.Replace(withExprs(neverReadyStage, "", expr(label, "Exists"), expr(revision, "Exists")),
		"name: pod-never-ready\n", "name: pod-never-ready-primary\n", 1)
	neverReadyPrimary = strings.Replace(neverReadyPrimary, expr(annotation, "Exists"), "", 1)
	docs := []string{
		nodefast.DefaultNodeInit,
		nodelease.DefaultNodeHeartbeatWithLease,
		ready,
		readyUnlessPrimary,
		neverReadyStage,
		neverReadyPrimary,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	out := ""
	for _, d := range docs {
		out += "---\n" + d + "\n"
	}
	return out
}

// NeverReadyAnnotation on a pod (template) keeps the pod from ever
// becoming Ready on the fake nodes.
const NeverReadyAnnotation = "localcluster.sluice.dev/never-ready"

// UnreadyPrimaryLabel on a pod template makes Sluice's primary copy of it
// never Ready (see kwokStages).
const UnreadyPrimaryLabel = "localcluster.sluice.dev/unready-primary"

const neverReadyStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-never-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.metadata.annotations["` + NeverReadyAnnotation + `"]'
      operator: 'Exists'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 3
        state:
          waiting:
            reason: CrashLoopBackOff
            message: "back-off restarting failed container (localcluster never-ready pod)"
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`

// runKwok runs kwok's controller the way its own main does.
func runKwok() int {
	// The Kubernetes components linked into this binary register a global
	// --version flag of their own type; kwok's cobra command wants a bool one.
	pflag.CommandLine = pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}

	ctx := signals.SetupSignalContext()
	ctx, logger := log.InitFlags(ctx, flagset)
	ctx, err := config.InitFlags(ctx, flagset)
	if err != nil {
		logger.Error("Init config flags", "err", err)
		return 1
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("kwok exited", "err", err)
		return 1
	}
	_ = os.Stdout.Sync()
	return 0
}
