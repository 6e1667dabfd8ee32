package dashboard

import (
	"context"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Row is a Canary on the list page.
type Row struct {
	Namespace    string     `json:"namespace"`
	Name         string     `json:"name"`
	Phase        string     `json:"phase"`
	Reason       string     `json:"reason,omitempty"`
	Weight       int32      `json:"weight"`
	Step         int32      `json:"step"`
	Steps        int        `json:"steps"`
	FailedChecks int32      `json:"failedChecks"`
	Threshold    int32      `json:"threshold"`
	LastCheck    *time.Time `json:"lastCheck,omitempty"`
	Created      time.Time  `json:"created"`
	Paused       bool       `json:"paused,omitempty"`
	Releasing    bool       `json:"releasing"`
}

func rowOf(c *v1alpha1.Canary) Row {
	r := Row{
		Namespace: c.Namespace, Name: c.Name, Phase: string(c.Status.Phase), Reason: c.Status.Reason,
		Weight: c.Status.CanaryWeight, Step: c.Status.CurrentStep, Steps: len(engine.Steps(c.Spec.Strategy)),
		FailedChecks: c.Status.FailedChecks, Created: c.CreationTimestamp.Time, Paused: c.Spec.Paused,
		Releasing: c.Status.Phase.InRelease(),
	}
	if r.Phase == "" {
		r.Phase = "New"
	}
	if a := c.Spec.Analysis; a != nil {
		r.Threshold = a.GetThreshold()
	}
	if t := c.Status.LastCheckTime; t != nil {
		lc := t.Time
		r.LastCheck = &lc
	}
	return r
}

// Detail is one Canary's page.
type Detail struct {
	Row
	Message        string                       `json:"message,omitempty"`
	StableRevision string                       `json:"stableRevision,omitempty"`
	CanaryRevision string                       `json:"canaryRevision,omitempty"`
	ObservedWeight *int32                       `json:"observedWeight,omitempty"`
	Strategy       string                       `json:"strategy"`
	StepList       []StepView                   `json:"stepList"`
	Checks         []CheckView                  `json:"checks"`
	Judge          *v1alpha1.JudgeStatus        `json:"judge,omitempty"`
	Gate           *v1alpha1.GateStatus         `json:"gate,omitempty"`
	Verification   *v1alpha1.VerificationStatus `json:"verification,omitempty"`
	Hooks          []HookView                   `json:"hooks,omitempty"`
	Conditions     []metav1.Condition           `json:"conditions,omitempty"`
	Events         []EventView                  `json:"events"`
	EventsHidden   bool                         `json:"eventsHidden,omitempty"`
	Records        []RecordView                 `json:"records"`
	RecordsHidden  bool                         `json:"recordsHidden,omitempty"`
	Actions        map[cli.Action]ActionView    `json:"actions"`
	Undo           []int64                      `json:"undo,omitempty"`
}

// StepView is one step of the release.
type StepView struct {
	Text  string `json:"text"`
	State string `json:"state"` // done, current or next
}

// CheckView is a metric or webhook check with its last result.
type CheckView struct {
	Name    string   `json:"name"`
	Bound   string   `json:"bound,omitempty"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`
	Value   string   `json:"value,omitempty"`
	Result  string   `json:"result,omitempty"` // as in the records; "" before the first round
	Message string   `json:"message,omitempty"`
	Webhook bool     `json:"webhook,omitempty"`
}

// HookView is a webhook of the analysis.
type HookView struct {
	Name string `json:"name"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

// EventView is a Kubernetes Event about the Canary.
type EventView struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count"`
	Last    time.Time `json:"last"`
}

// RecordView is a recorded release.
type RecordView struct {
	Number       int64                   `json:"number"`
	Revision     string                  `json:"revision"`
	Images       string                  `json:"images,omitempty"`
	Outcome      string                  `json:"outcome,omitempty"`
	Reason       string                  `json:"reason,omitempty"`
	Message      string                  `json:"message,omitempty"`
	Start        *time.Time              `json:"start,omitempty"`
	End          *time.Time              `json:"end,omitempty"`
	FailedChecks int32                   `json:"failedChecks,omitempty"`
	CheckRounds  int64                   `json:"checkRounds,omitempty"`
	Stable       bool                    `json:"stable,omitempty"`
	Current      bool                    `json:"current,omitempty"`
	History      []v1alpha1.ReleasePoint `json:"history,omitempty"`
}

// ActionView says whether an action makes sense now, and what it would
// do or why not (cli.Plan, what the CLI says before it acts).
type ActionView struct {
	OK   bool   `json:"ok"`
	Says string `json:"says"`
}

var actions = []cli.Action{cli.Promote, cli.PromoteFull, cli.Abort, cli.Retry, cli.Pause, cli.Resume}

// detail builds a Canary's page from the cache; nil when it is gone.
func (s *Server) detail(ctx context.Context, ns, name string) (*Detail, error) {
	var c v1alpha1.Canary
	if err := s.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	st := c.Status
	d := &Detail{Row: rowOf(&c), Message: st.Message, StableRevision: st.StableRevision, CanaryRevision: st.CanaryRevision,
		ObservedWeight: st.ObservedCanaryWeight, Judge: st.Judge, Gate: st.Gate, Verification: st.Verification,
		Conditions: st.Conditions, Actions: map[cli.Action]ActionView{}, Strategy: "canary",
		Events: []EventView{}, Records: []RecordView{}, StepList: []StepView{}, Checks: []CheckView{}}
	if c.Spec.Strategy.BlueGreen != nil {
		d.Strategy = "blue/green"
	}
	for i, step := range engine.Steps(c.Spec.Strategy) {
		state := "next"
		switch {
		case cli.Releasing(st.Phase) && int32(i) == st.CurrentStep:
			state = "current"
		case (cli.Releasing(st.Phase) && int32(i) < st.CurrentStep) || st.Phase == v1alpha1.PhaseSucceeded ||
			st.Phase == v1alpha1.PhasePromoting || st.Phase == v1alpha1.PhaseFinalising:
			state = "done"
		}
		d.StepList = append(d.StepList, StepView{Text: cli.StepText(&c, i, step), State: state})
	}
	results := map[string]v1alpha1.MetricStatus{}
	for _, m := range st.Metrics {
		results[m.Name] = m
	}
	check := func(v CheckView) {
		if r, ok := results[v.Name]; ok {
			v.Value, v.Message, v.Result = r.Value, r.Message, r.Result()
		}
		d.Checks = append(d.Checks, v)
	}
	if a := c.Spec.Analysis; a != nil {
		for _, m := range a.Metrics {
			v := CheckView{Name: m.Name, Bound: cli.Bound(m)}
			if m.Compare != nil {
				v.Bound = "vs primary (" + m.Compare.GetDirection() + ")"
			}
			if r := m.ThresholdRange; r != nil {
				v.Min, v.Max = r.Min, r.Max
			}
			check(v)
		}
		if a.Compares() {
			score := float64(a.Judge.GetPassScore())
			check(CheckView{Name: v1alpha1.JudgeCheckName, Bound: "score ≥ " + trimFloat(score), Min: &score})
		}
		for _, h := range a.Webhooks {
			d.Hooks = append(d.Hooks, HookView{Name: h.Name, Type: string(h.GetType()), URL: h.URL})
			if h.GetType() == v1alpha1.WebhookRollout {
				check(CheckView{Name: h.Name, Bound: "webhook answers 2xx", Webhook: true})
			}
		}
	}
	for _, a := range actions {
		says, err := cli.Plan(&c, a)
		if err != nil {
			d.Actions[a] = ActionView{Says: err.Error()}
		} else {
			d.Actions[a] = ActionView{OK: true, Says: says}
		}
	}
	if s.records {
		var recs v1alpha1.CanaryRevisionList
		if err := s.cache.List(ctx, &recs, client.InNamespace(ns), client.MatchingLabels{"sluice.dev/canary": name}); err != nil {
			return nil, err
		}
		slices.SortFunc(recs.Items, func(a, b v1alpha1.CanaryRevision) int { return int(b.Spec.Number - a.Spec.Number) })
		for _, r := range recs.Items {
			v := RecordView{Number: r.Spec.Number, Revision: r.Spec.Revision, Images: r.Spec.Images,
				Outcome: r.Status.Outcome, Reason: r.Status.Reason, Message: r.Status.Message,
				FailedChecks: r.Status.FailedChecks, CheckRounds: r.Status.CheckRounds, History: r.Status.History,
				Stable: r.Spec.Revision == st.StableRevision, Current: r.Spec.Revision == st.CanaryRevision}
			if t := r.Status.StartTime; t != nil {
				v.Start = &t.Time
			}
			if t := r.Status.EndTime; t != nil {
				v.End = &t.Time
			}
			d.Records = append(d.Records, v)
			if _, err := cli.UndoTarget(&c, recs.Items, r.Spec.Number); err == nil {
				d.Undo = append(d.Undo, r.Spec.Number)
			}
		}
	} else {
		d.RecordsHidden = true
	}
	if s.events {
		var evs corev1.EventList
		if err := s.cache.List(ctx, &evs, client.InNamespace(ns), client.MatchingFields{eventObjectIndex: name}); err != nil {
			return nil, err
		}
		for _, e := range evs.Items {
			last := e.LastTimestamp.Time
			if last.IsZero() {
				last = e.EventTime.Time
			}
			if last.IsZero() {
				last = e.CreationTimestamp.Time
			}
			count := e.Count
			if e.Series != nil {
				count = e.Series.Count
			}
			d.Events = append(d.Events, EventView{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: max(count, 1), Last: last})
		}
		slices.SortFunc(d.Events, func(a, b EventView) int { return b.Last.Compare(a.Last) })
		if len(d.Events) > 50 {
			d.Events = d.Events[:50]
		}
	} else {
		d.EventsHidden = true
	}
	return d, nil
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
