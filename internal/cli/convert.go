package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/sluice-dev/sluice/internal/convert"
)

// IncompleteError says convert wrote its output but some source fields
// were not carried (exit code 3).
type IncompleteError struct{ NotCarried int }

func (e IncompleteError) Error() string {
	return fmt.Sprintf("%d source field(s) not carried: see the report above", e.NotCarried)
}

// newConvert builds `kubectl sluice convert`.
func newConvert(streams genericiooptions.IOStreams) *cobra.Command {
	var files []string
	var opts convert.Options
	var all bool
	var handover string
	cmd := &cobra.Command{
		Use:   "convert -f <file|dir|->...",
		Short: "Convert Flagger Canaries and Argo Rollouts (with their templates) into Sluice manifests, reporting what is not carried (exit 3 when something is)",
		Args:  noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return UsageError{fmt.Errorf("give one or more -f <file|dir|-> ")}
			}
			var objs []map[string]any
			for _, f := range files {
				got, err := readManifests(f, streams.In)
				if err != nil {
					return err
				}
				objs = append(objs, got...)
			}
			opts.Handover = handover != ""
			r := convert.Convert(objs, opts)
			rest, ho := r.SplitHandover()
			if err := convert.Render(streams.Out, rest); err != nil {
				return err
			}
			if opts.Handover {
				if err := writeHandover(handover, ho); err != nil {
					return err
				}
			}
			r.Report.Write(streams.ErrOut, all)
			if len(r.Ignored) > 0 {
				fmt.Fprintf(streams.ErrOut, "read, not converted (not a source kind): %s\n", strings.Join(r.Ignored, ", "))
			}
			if n := len(r.Report.NotCarried()); n > 0 {
				return IncompleteError{NotCarried: n}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "a manifest file, a directory of them (*.yaml, *.yml, *.json), or - for stdin; repeatable")
	cmd.Flags().StringVar(&opts.FlaggerProvider, "flagger-provider", "", "the provider of Flagger Canaries without spec.provider (Flagger's -mesh-provider), e.g. gatewayapi")
	cmd.Flags().StringVar(&handover, "handover", "", "write to this file, for each Flagger Canary, the hand-over Service (and HTTPRoute) that carry a live service's traffic while Flagger's objects go, with the steps of the switch as comments")
	cmd.Flags().BoolVar(&all, "report-all", false, "list the carried fields in the report too")
	return cmd
}

// writeHandover writes the hand-over objects to path.
func writeHandover(path string, r convert.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--handover: %w", err)
	}
	if err := convert.Render(f, r); err != nil {
		_ = f.Close()
		return fmt.Errorf("--handover %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--handover %s: %w", path, err)
	}
	return nil
}

// readManifests decodes a file, every manifest of a directory, or stdin.
func readManifests(path string, stdin io.Reader) ([]map[string]any, error) {
	if path == "-" {
		return convert.Decode(stdin)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, UsageError{err}
	}
	paths := []string{path}
	if st.IsDir() {
		paths = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
				paths = append(paths, filepath.Join(path, e.Name()))
			}
		}
	}
	var out []map[string]any
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		objs, err := convert.Decode(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}
