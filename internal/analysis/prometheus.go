package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// prometheus asks Prometheus (or a server speaking its HTTP API:
// VictoriaMetrics, Thanos, Mimir) for an instant query through
// client_golang's API client, over the provider's client (credentials,
// bounded answers, rate limits).
//
// client_golang sends the query as a POST form and, when the server
// answers 403, 405 or 501, again as a GET: a proxy that refuses POST costs
// two requests per query.
func (q *Querier) prometheus(ctx context.Context, p Provider, r Request) (float64, error) {
	c, err := api.NewClient(api.Config{Address: p.Address, Client: q.client(p)})
	if err != nil {
		return 0, fmt.Errorf("address %q: %w", p.Address, err)
	}
	v, _, err := promv1.NewAPI(c).Query(ctx, r.Query, q.now())
	if err != nil {
		return 0, promError(err)
	}
	return promValue(v)
}

// promError is client_golang's error with the server's own words: its
// error for a 4xx with an error body, else the start of the answer.
func promError(err error) error {
	var pe *promv1.Error
	if !errors.As(err, &pe) {
		return err
	}
	msg := fmt.Sprintf("%s: %s", pe.Type, pe.Msg)
	if d := strings.TrimSpace(pe.Detail); d != "" && pe.Type != promv1.ErrBadData && pe.Type != promv1.ErrExec {
		msg += ": " + Snippet([]byte(d))
	}
	return errors.New(msg)
}

// promValue reads an instant query's answer down to one value.
func promValue(v model.Value) (float64, error) {
	var f model.SampleValue
	switch v := v.(type) {
	case *model.Scalar:
		f = v.Value
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, ErrNoValues
		case 1:
			f = v[0].Value
		default:
			return 0, fmt.Errorf("returned %d series; aggregate it to one (for example sum(...))", len(v))
		}
	case nil:
		return 0, ErrNoValues
	default:
		return 0, fmt.Errorf("returned a %s; want a scalar or a one-series vector", v.Type())
	}
	if math.IsNaN(float64(f)) {
		return 0, ErrNoValues
	}
	return float64(f), nil
}

// prometheusRange asks a range query over the window, one point per step,
// and returns every value of every series (NaN included: the judge drops
// them).
func (q *Querier) prometheusRange(ctx context.Context, p Provider, r Request) ([]float64, error) {
	c, err := api.NewClient(api.Config{Address: p.Address, Client: q.client(p)})
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", p.Address, err)
	}
	end := q.now()
	start := end.Add(-r.Window)
	if r.From.After(start) {
		start = r.From
	}
	if !start.Before(end) {
		return nil, nil
	}
	v, _, err := promv1.NewAPI(c).QueryRange(ctx, r.Query, promv1.Range{Start: start, End: end, Step: r.Step})
	if err != nil {
		return nil, promError(err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("returned a %s; want a matrix", v.Type())
	}
	var out []float64
	for _, s := range m {
		for _, pt := range s.Values {
			out = append(out, float64(pt.Value))
		}
	}
	return out, nil
}
