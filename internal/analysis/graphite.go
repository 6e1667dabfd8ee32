package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// graphite asks graphite-web's render API for a target over the check's
// window and takes its newest non-null point. The query is a target
// expression; a query starting with "target=" is taken as the render
// API's parameters as they are (Flagger's form), with format=json forced
// and the window added when it sets no from.
func (q *Querier) graphite(ctx context.Context, p Provider, r Request) (float64, error) {
	params := url.Values{}
	if strings.HasPrefix(strings.TrimSpace(r.Query), "target=") {
		v, err := url.ParseQuery(strings.Join(strings.Fields(r.Query), ""))
		if err != nil {
			return 0, fmt.Errorf("render parameters: %w", err)
		}
		params = v
	} else {
		params.Set("target", r.Query)
	}
	if params.Get("from") == "" {
		params.Set("from", fmt.Sprintf("-%ds", max(int64(r.Window.Seconds()), 1)))
	}
	if params.Get("until") == "" {
		params.Set("until", "now")
	}
	params.Set("format", "json")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.Address, "/")+"/render?"+params.Encode(), nil)
	if err != nil {
		return 0, err
	}
	_, b, err := q.send(req, p, nil)
	if err != nil {
		return 0, err
	}
	var series []struct {
		Target     string               `json:"target"`
		Datapoints [][2]json.RawMessage `json:"datapoints"`
	}
	if err := json.Unmarshal(b, &series); err != nil {
		return 0, fmt.Errorf("not a Graphite render answer: %s", Snippet(b))
	}
	switch len(series) {
	case 0:
		return 0, ErrNoValues
	case 1:
	default:
		return 0, fmt.Errorf("returned %d series; combine them into one (for example sumSeries(...))", len(series))
	}
	pts := series[0].Datapoints
	for i := len(pts) - 1; i >= 0; i-- {
		if v := string(pts[i][0]); v != "null" && v != "" {
			return parseNumber(v, "point of "+series[0].Target)
		}
	}
	return 0, ErrNoValues
}
