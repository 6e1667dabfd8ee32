package playground

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/workload"
)

// show prints the playground: on a terminal it redraws one screen in
// place (the narration, the release as `kubectl sluice get --watch` shows
// it, and the traffic measured); elsewhere (CI logs) it prints a line per
// change.
type show struct {
	out  io.Writer
	tty  bool
	cl   client.Client
	load *dataplane.Load

	said []string
	last string
}

func (s *show) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.said = append(s.said, msg)
	if !s.tty {
		fmt.Fprintf(s.out, "\n== %s\n", msg)
	}
}

// traffic is what the load generator saw over the last few seconds.
type traffic struct {
	requests, failures, byVersion int
}

func (s *show) recent(version string, window time.Duration) traffic {
	var t traffic
	if s.load == nil {
		return t
	}
	since := time.Now().Add(-window)
	rs := s.load.Results()
	for i := len(rs) - 1; i >= 0 && rs[i].At.After(since); i-- {
		t.requests++
		if rs[i].Code != 200 {
			t.failures++
		}
		if rs[i].Version == version {
			t.byVersion++
		}
	}
	return t
}

// draw shows the current state once.
func (s *show) draw(c *v1alpha1.Canary, target, primary *appsv1.Deployment, version string) {
	window := 3 * time.Second
	tr := s.recent(version, window)
	trafficLine := "traffic: not started yet"
	if s.load != nil && tr.requests > 0 {
		trafficLine = fmt.Sprintf("traffic, last %s: %d req/s through Traefik, %.1f%% answered by %s (canary weight set: %d%%), %d failed",
			window, tr.requests/int(window.Seconds()), 100*float64(tr.byVersion)/float64(tr.requests), orNone(version), c.Status.CanaryWeight, tr.failures)
	}
	if s.tty {
		var b bytes.Buffer
		for _, l := range s.said[max(0, len(s.said)-4):] {
			fmt.Fprintf(&b, "== %s\n", l)
		}
		b.WriteString("\n")
		frame := cli.Frame(cli.View{Canary: c, Target: target, Primary: primary}, time.Now())
		fmt.Fprint(s.out, "\033[H"+strings.ReplaceAll(b.String(), "\n", "\033[K\n")+strings.TrimPrefix(strings.TrimSuffix(frame, "\033[J"), "\033[H")+"\n"+trafficLine+"\033[K\n\033[J")
		return
	}
	line := cli.Line(c)
	if line != s.last {
		s.last = line
		fmt.Fprintf(s.out, "%s  %s\n       %s\n", time.Now().Format("15:04:05"), line, trafficLine)
	}
}

func orNone(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// until shows the release until the Canary reaches one of phases, after
// having left them (a release that has not been noticed yet still shows
// the previous end state).
func (s *show) until(ctx context.Context, version string, phases ...v1alpha1.CanaryPhase) (*v1alpha1.Canary, error) {
	left := version == "" // the first initialisation starts from no phase
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var c v1alpha1.Canary
		if err := s.cl.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: App}, &c); err == nil {
			var target, primary appsv1.Deployment
			tp, pp := &target, &primary
			if s.cl.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: App}, tp) != nil {
				tp = nil
			}
			if s.cl.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: workload.PrimaryName(App)}, pp) != nil {
				pp = nil
			}
			s.draw(&c, tp, pp, version)
			done := slices.Contains(phases, c.Status.Phase)
			if !done {
				left = true
			}
			if done && left {
				return &c, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("canary %s/%s did not reach %v within 5m", Namespace, App, phases)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// serving waits until version answers the traffic.
func (s *show) serving(ctx context.Context, version string) error {
	deadline := time.Now().Add(time.Minute)
	for s.recent(version, time.Second).byVersion == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s through Traefik (%s, Host %s) within 1m", version, WebAddr, Host)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// release rolls out version and follows it to its end.
func (s *show) release(ctx context.Context, cl client.Client, version string, errRate float64) (*ReleaseSummary, error) {
	t0 := time.Now()
	if err := setVersion(ctx, cl, version, errRate); err != nil {
		return nil, err
	}
	c, err := s.until(ctx, version, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	if err != nil {
		return nil, err
	}
	rs := &ReleaseSummary{Version: version, Phase: c.Status.Phase, Message: c.Status.Reason + ": " + c.Status.Message, Took: time.Since(t0)}
	for _, r := range s.load.Results() {
		if r.At.Before(t0) {
			continue
		}
		rs.Requests++
		if r.Code != 200 {
			rs.Failures++
		}
		if r.Version == version {
			rs.Served++
		}
	}
	return rs, nil
}
