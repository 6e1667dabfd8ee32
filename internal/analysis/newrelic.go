package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// nerdGraph is the NRQL query NerdGraph runs for an account.
const nerdGraph = `query($accountId: Int!, $nrql: Nrql!, $timeout: Seconds) { actor { account(id: $accountId) { nrql(query: $nrql, timeout: $timeout) { results } } } }`

var since = regexp.MustCompile(`(?i)\bSINCE\b`)

// newRelic asks New Relic's NerdGraph API for an NRQL query; a query
// without SINCE looks back over the check's window. A small client of
// ours over net/http (one GraphQL request; the official client carries
// every New Relic API).
func (q *Querier) newRelic(ctx context.Context, p Provider, r Request) (float64, error) {
	base := p.Address
	if base == "" {
		base = "https://api.newrelic.com"
		if p.NewRelic.GetRegion() == "EU" {
			base = "https://api.eu.newrelic.com"
		}
	}
	account, err := strconv.ParseInt(p.SecretValue("account-id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("secret key account-id is not an account number")
	}
	nrql := r.Query
	if !since.MatchString(nrql) {
		nrql = fmt.Sprintf("%s SINCE %d seconds ago", nrql, int64(r.Window.Seconds()))
	}
	body, _ := json.Marshal(map[string]any{"query": nerdGraph, "variables": map[string]any{
		"accountId": account, "nrql": nrql, "timeout": int(p.GetTimeout().Seconds()),
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/graphql", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	// GraphQL answers its errors in the body, often with 200; a 4xx body
	// is read for them too.
	status, b, err := q.send(req, p, func(status int) bool { return status >= 400 && status < 500 })
	if err != nil {
		return 0, err
	}
	var a struct {
		Data *struct {
			Actor struct {
				Account *struct {
					NRQL *struct {
						Results []map[string]any `json:"results"`
					} `json:"nrql"`
				} `json:"account"`
			} `json:"actor"`
		} `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				ErrorClass string `json:"errorClass"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &a); err != nil || (status >= 400 && len(a.Errors) == 0) {
		if status >= 400 {
			return 0, fmt.Errorf("HTTP %d: %s", status, Snippet(b))
		}
		return 0, fmt.Errorf("not a NerdGraph answer: %s", Snippet(b))
	}
	if len(a.Errors) > 0 {
		var msgs []string
		for _, e := range a.Errors {
			m := e.Message
			if e.Extensions.ErrorClass != "" {
				m = e.Extensions.ErrorClass + ": " + m
			}
			msgs = append(msgs, m)
		}
		return 0, fmt.Errorf("nerdgraph: %s", strings.Join(msgs, "; "))
	}
	if a.Data == nil || a.Data.Actor.Account == nil || a.Data.Actor.Account.NRQL == nil {
		return 0, fmt.Errorf("not a NerdGraph answer: %s", Snippet(b))
	}
	return nrqlValue(a.Data.Actor.Account.NRQL.Results)
}

// nrqlValue reads NRQL results down to one number: one row, and in it one
// number (a function's value such as count or average.duration, or a
// percentile's one entry), or the one named value (AS value).
func nrqlValue(rows []map[string]any) (float64, error) {
	switch len(rows) {
	case 0:
		return 0, ErrNoValues
	case 1:
	default:
		return 0, fmt.Errorf("returned %d rows; aggregate to one (no FACET, no TIMESERIES)", len(rows))
	}
	row := rows[0]
	if v, ok := row["value"]; ok {
		return nrqlNumber("value", v)
	}
	leaves := map[string]any{}
	for k, v := range row {
		if m, ok := v.(map[string]any); ok {
			for k2, v2 := range m {
				leaves[k+"."+k2] = v2
			}
			continue
		}
		leaves[k] = v
	}
	keys := slices.Sorted(maps.Keys(leaves))
	if len(keys) != 1 {
		return 0, fmt.Errorf("the row has %d values (%s); select one, or name it AS value", len(keys), strings.Join(keys, ", "))
	}
	return nrqlNumber(keys[0], leaves[keys[0]])
}

func nrqlNumber(key string, v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return 0, fmt.Errorf("%w (%s is null)", ErrNoValues, key)
	case float64:
		return x, nil
	default:
		return 0, fmt.Errorf("%s is %v, not a number", key, v)
	}
}
