package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// watchCanary follows one Canary from a watch (never by polling) until ctx ends.
// On a terminal each change redraws the whole view in place: the cursor
// goes home, every line clears only its own tail and the rest of the screen
// is cleared once, so nothing flickers or scrolls. Elsewhere (a pipe, CI
// logs) each change appends one line.
func watchCanary(ctx context.Context, cl client.WithWatch, ns, name string, out io.Writer) error {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	v, err := load(ctx, cl, ns, name)
	if err != nil {
		return err
	}
	last := ""
	draw := func(v View) {
		if tty {
			_, _ = io.WriteString(out, Frame(v, time.Now()))
			return
		}
		line := Line(v.Canary)
		if line != last {
			fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
	}
	draw(v)
	w, err := cl.Watch(ctx, &v1alpha1.CanaryList{}, client.InNamespace(ns),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
	if err != nil {
		return fmt.Errorf("watch canary %s/%s: %w", ns, name, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch canary %s/%s: the apiserver closed the watch", ns, name)
			}
			switch ev.Type {
			case watch.Deleted:
				fmt.Fprintf(out, "canary %s/%s was deleted\n", ns, name)
				return nil
			case watch.Added, watch.Modified:
				c, ok := ev.Object.(*v1alpha1.Canary)
				if !ok {
					continue
				}
				if tty {
					// The Deployments' replicas are shown too; read them
					// once per change of the Canary.
					if nv, err := load(ctx, cl, ns, name); err == nil {
						v = nv
					}
				}
				v.Canary = c
				draw(v)
			}
		}
	}
}

// Line is the one-line summary of a release, for logs.
func Line(c *v1alpha1.Canary) string {
	st := c.Status
	phase := string(st.Phase)
	if phase == "" {
		phase = "(new)"
	}
	return fmt.Sprintf("%-16s step %d/%d  weight %3d%%  failed %d  %s: %s",
		phase, st.CurrentStep, st.Steps, st.CanaryWeight, st.FailedChecks, st.Reason, st.Message)
}

// Frame is one in-place redraw of the view for a terminal: cursor home,
// each line clearing only what is left of the previous frame on it, then
// the rest of the screen cleared. Written in one call, it never flickers.
func Frame(v View, now time.Time) string {
	var b bytes.Buffer
	Render(&b, v, now)
	return "\033[H" + strings.ReplaceAll(b.String(), "\n", "\033[K\n") + "\033[J"
}
