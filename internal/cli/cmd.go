package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/lint"
	"github.com/sluice-dev/sluice/internal/version"
)

// UsageError marks a command-line mistake (exit code 2).
type UsageError struct{ error }

// NewRoot builds `kubectl sluice`. Exit codes: 0 ok, 1 error, 2 usage.
// More commands (the dashboard's) are made from the same kubeconfig flags.
func NewRoot(streams genericiooptions.IOStreams, more ...func(*genericclioptions.ConfigFlags) *cobra.Command) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:           "kubectl-sluice",
		Short:         "Watch and steer Sluice canary releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
	flags.AddFlags(root.PersistentFlags())
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)

	var all bool
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List canaries with phase, weight and step",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, ns, err := clientFor(flags)
			if err != nil {
				return err
			}
			var cs v1alpha1.CanaryList
			opts := []client.ListOption{}
			if !all {
				opts = append(opts, client.InNamespace(ns))
			}
			if err := cl.List(cmd.Context(), &cs, opts...); err != nil {
				return fmt.Errorf("list canaries: %w", err)
			}
			slices.SortFunc(cs.Items, func(a, b v1alpha1.Canary) int {
				return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
			})
			if output != "" {
				cs.APIVersion, cs.Kind = "sluice.dev/v1alpha1", "CanaryList"
				for i := range cs.Items {
					typed(&cs.Items[i])
				}
				return printObject(streams.Out, output, &cs)
			}
			RenderList(streams.Out, cs.Items, all, time.Now())
			return nil
		},
	}
	list.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list canaries in every namespace")

	var watchFlag bool
	get := &cobra.Command{
		Use:   "get <canary>",
		Short: "Show one release: phase, revisions, steps, weights, replicas, analysis, conditions",
		Args:  oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ns, err := clientFor(flags)
			if err != nil {
				return err
			}
			if watchFlag && output != "" {
				return UsageError{fmt.Errorf("--watch and --output do not go together")}
			}
			if watchFlag {
				return watchCanary(cmd.Context(), cl, ns, args[0], streams.Out)
			}
			v, err := load(cmd.Context(), cl, ns, args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printObject(streams.Out, output, typed(v.Canary))
			}
			Render(streams.Out, v, time.Now())
			return nil
		},
	}
	get.Flags().BoolVarP(&watchFlag, "watch", "w", false, "follow the release: redraw in place on a terminal, one line per change otherwise")
	lint := &cobra.Command{
		Use:   "lint <file>...",
		Short: "Check Canary and MetricTemplate manifests offline, with the apiserver's own validation and Sluice's rules (- reads stdin)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return UsageError{fmt.Errorf("give one or more files (- for stdin)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return lintFiles(cmd.Context(), args, streams)
		},
	}
	history := &cobra.Command{
		Use:   "history <canary>",
		Short: "The recorded revisions of a canary: outcome, when, how long, images (* marks the primary's)",
		Args:  oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ns, err := clientFor(flags)
			if err != nil {
				return err
			}
			c, recs, err := loadHistory(cmd.Context(), cl, ns, args[0])
			if err != nil {
				return err
			}
			if output != "" {
				list := v1alpha1.CanaryRevisionList{Items: recs}
				list.APIVersion, list.Kind = "sluice.dev/v1alpha1", "CanaryRevisionList"
				for i := range list.Items {
					list.Items[i].APIVersion, list.Items[i].Kind = "sluice.dev/v1alpha1", "CanaryRevision"
					list.Items[i].ManagedFields = nil
				}
				return printObject(streams.Out, output, &list)
			}
			RenderHistory(streams.Out, c, recs, time.Now())
			return nil
		},
	}
	var toRevision int64
	undoCmd := &cobra.Command{
		Use:   "undo <canary>",
		Short: "Set the target back to an earlier recorded revision (default: the last Succeeded one before the current)",
		Args:  oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ns, err := clientFor(flags)
			if err != nil {
				return err
			}
			return undo(cmd.Context(), cl, ns, args[0], toRevision, streams)
		},
	}
	undoCmd.Flags().Int64Var(&toRevision, "to-revision", 0, "the revision number to go back to (see history)")
	for _, c := range []*cobra.Command{list, get, history} {
		c.Flags().StringVarP(&output, "output", "o", "", "print the object(s) as json or yaml, for scripts")
		c.PreRunE = func(*cobra.Command, []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return UsageError{fmt.Errorf("--output %q: use json or yaml", output)}
			}
			return nil
		}
	}
	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this plugin was built from",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(streams.Out, "kubectl-sluice "+version.Get().String())
			return err
		},
	}
	root.AddCommand(list, get, lint, history, undoCmd, newConvert(streams), versionCmd)
	for _, m := range more {
		root.AddCommand(m(flags))
	}

	var full bool
	for _, a := range []struct {
		action Action
		short  string
	}{
		{Promote, "Leave the current step now (--full: skip every remaining step)"},
		{Abort, "Roll the release back now"},
		{Retry, "Release a Failed revision again, without touching the Deployment"},
		{Pause, "Hold the release where it is"},
		{Resume, "Go on with a paused release"},
	} {
		cmd := &cobra.Command{
			Use:   string(a.action) + " <canary>",
			Short: a.short,
			Args:  oneArg,
			RunE: func(cmd *cobra.Command, args []string) error {
				action := a.action
				if action == Promote && full {
					action = PromoteFull
				}
				cl, ns, err := clientFor(flags)
				if err != nil {
					return err
				}
				return act(cmd.Context(), cl, ns, args[0], action, streams)
			},
		}
		if a.action == Promote {
			cmd.Flags().BoolVar(&full, "full", false, "skip every remaining step")
		}
		root.AddCommand(cmd)
	}
	return root
}

// typed sets the Canary's apiVersion and kind (the client leaves them
// empty on typed objects) and drops managedFields, as kubectl does.
func typed(c *v1alpha1.Canary) *v1alpha1.Canary {
	c.APIVersion, c.Kind = "sluice.dev/v1alpha1", "Canary"
	c.ManagedFields = nil
	return c
}

// printObject writes obj as indented JSON or as YAML.
func printObject(w io.Writer, format string, obj any) error {
	var b []byte
	var err error
	if format == "yaml" {
		b, err = yaml.Marshal(obj)
	} else {
		b, err = json.MarshalIndent(obj, "", "    ")
		b = append(b, '\n')
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	_, err = w.Write(b)
	return err
}

// lintFiles lints each file and prints the findings; any error finding
// makes the command fail (exit 1), warnings do not.
func lintFiles(ctx context.Context, files []string, streams genericiooptions.IOStreams) error {
	l, err := lint.New()
	if err != nil {
		return err
	}
	errorsFound := 0
	for _, f := range files {
		var r io.Reader = streams.In
		if f != "-" {
			fh, err := os.Open(f)
			if err != nil {
				return UsageError{err}
			}
			defer func() { _ = fh.Close() }()
			r = fh
		}
		findings, err := l.Lint(ctx, r)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, fd := range findings {
			fmt.Fprintf(streams.Out, "%s: %s\n", f, fd)
			if !fd.Warning {
				errorsFound++
			}
		}
	}
	if errorsFound > 0 {
		return fmt.Errorf("%d error(s) found", errorsFound)
	}
	return nil
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) != 0 {
		return UsageError{fmt.Errorf("no arguments expected, got %v", args)}
	}
	return nil
}

func oneArg(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return UsageError{fmt.Errorf("expected one canary name, got %d arguments", len(args))}
	}
	return nil
}

func clientFor(flags *genericclioptions.ConfigFlags) (client.WithWatch, string, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("namespace: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	cl, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("client: %w", err)
	}
	return cl, ns, nil
}

func load(ctx context.Context, cl client.Client, ns, name string) (View, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var v View
	c := &v1alpha1.Canary{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		return v, fmt.Errorf("canary %s/%s: %w", ns, name, err)
	}
	v.Canary = c
	for _, x := range []struct {
		name string
		into **appsv1.Deployment
	}{{c.Spec.TargetRef.Name, &v.Target}, {c.Spec.TargetRef.Name + "-primary", &v.Primary}} {
		d := &appsv1.Deployment{}
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: x.name}, d)
		switch {
		case err == nil:
			*x.into = d
		case !apierrors.IsNotFound(err):
			return v, fmt.Errorf("deployment %s/%s: %w", ns, x.name, err)
		}
	}
	return v, nil
}

// Act checks the action against the Canary's state and makes the one
// patch the controller honours; it returns what will happen. The apiserver's
// refusal (RBAC, admission) is returned wrapped, its message intact.
func Act(ctx context.Context, cl client.Client, ns, name string, a Action) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &v1alpha1.Canary{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		return "", fmt.Errorf("canary %s/%s: %w", ns, name, err)
	}
	what, err := Plan(c, a)
	if err != nil {
		return "", err
	}
	patch := client.MergeFrom(c.DeepCopy())
	switch a {
	case Pause, Resume:
		c.Spec.Paused = a == Pause
	default:
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[v1alpha1.RequestAnnotation] = fmt.Sprintf("%s/%d", a, time.Now().UnixNano())
	}
	if err := cl.Patch(ctx, c, patch, client.FieldOwner(v1alpha1.CLIFieldOwner)); err != nil {
		return "", fmt.Errorf("%s canary %s/%s: %w", a, ns, name, err)
	}
	return what, nil
}

// act is Act for the command line.
func act(ctx context.Context, cl client.Client, ns, name string, a Action, streams genericiooptions.IOStreams) error {
	what, err := Act(ctx, cl, ns, name, a)
	if err != nil {
		return err
	}
	fmt.Fprintln(streams.Out, what)
	return nil
}
