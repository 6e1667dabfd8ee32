package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// datadog asks Datadog's metrics API over the check's window: v2's scalar
// query (the window reduced to one value by the aggregator) or v1's
// timeseries query (the newest non-null point). A small client of ours
// over net/http: the official client is a large generated module for two
// requests.
func (q *Querier) datadog(ctx context.Context, p Provider, r Request) (float64, error) {
	base := p.Address
	if base == "" {
		base = "https://api." + p.Datadog.GetSite()
	}
	base = strings.TrimRight(base, "/")
	to := q.now()
	from := to.Add(-r.Window)
	if p.Datadog.GetAPIVersion() == "v1" {
		u := fmt.Sprintf("%s/api/v1/query?from=%d&to=%d&query=%s", base, from.Unix(), to.Unix(), url.QueryEscape(r.Query))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		_, b, err := q.send(req, p, nil)
		if err != nil {
			return 0, err
		}
		return datadogV1Value(b)
	}
	body, _ := json.Marshal(map[string]any{"data": map[string]any{
		"type": "scalar_request",
		"attributes": map[string]any{
			"from": from.UnixMilli(), "to": to.UnixMilli(),
			"queries": []map[string]string{{"data_source": "metrics", "name": "a", "query": r.Query, "aggregator": p.Datadog.GetAggregator()}},
		},
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v2/query/scalar", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	_, b, err := q.send(req, p, nil)
	if err != nil {
		return 0, err
	}
	return datadogV2Value(b)
}

// datadogV2Value reads a scalar answer: one number column with one value.
func datadogV2Value(b []byte) (float64, error) {
	var a struct {
		Data *struct {
			Attributes struct {
				Columns []struct {
					Name   string            `json:"name"`
					Type   string            `json:"type"`
					Values []json.RawMessage `json:"values"`
				} `json:"columns"`
			} `json:"attributes"`
		} `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, fmt.Errorf("not a Datadog answer: %s", Snippet(b))
	}
	if e := datadogErrors(a.Errors); e != "" {
		return 0, fmt.Errorf("datadog: %s", e)
	}
	if a.Data == nil {
		return 0, fmt.Errorf("not a Datadog answer: %s", Snippet(b))
	}
	for _, c := range a.Data.Attributes.Columns {
		if c.Type != "number" {
			continue
		}
		switch len(c.Values) {
		case 0:
			return 0, ErrNoValues
		case 1:
		default:
			return 0, fmt.Errorf("returned %d groups; aggregate the query to one (drop its by {...})", len(c.Values))
		}
		if string(c.Values[0]) == "null" {
			return 0, ErrNoValues
		}
		return parseNumber(string(c.Values[0]), "value")
	}
	return 0, ErrNoValues
}

// datadogV1Value reads a timeseries answer: the newest non-null point of
// the one series.
func datadogV1Value(b []byte) (float64, error) {
	var a struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Series *[]struct {
			Pointlist [][2]json.RawMessage `json:"pointlist"`
		} `json:"series"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, fmt.Errorf("not a Datadog answer: %s", Snippet(b))
	}
	if e := datadogErrors(a.Errors); e != "" {
		return 0, fmt.Errorf("datadog: %s", e)
	}
	if a.Status == "error" || a.Error != "" {
		return 0, fmt.Errorf("datadog: %s", a.Error)
	}
	if a.Series == nil {
		return 0, fmt.Errorf("not a Datadog answer: %s", Snippet(b))
	}
	switch n := len(*a.Series); {
	case n == 0:
		return 0, ErrNoValues
	case n > 1:
		return 0, fmt.Errorf("returned %d series; aggregate the query to one (drop its by {...})", n)
	}
	pts := (*a.Series)[0].Pointlist
	for i := len(pts) - 1; i >= 0; i-- {
		if v := string(pts[i][1]); v != "null" && v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("point %s is not a number", v)
			}
			return f, nil
		}
	}
	return 0, ErrNoValues
}

// datadogErrors reads Datadog's "errors": a string (query API) or a list
// of strings (every API's error body).
func datadogErrors(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return strings.Join(l, "; ")
	}
	return string(raw)
}
