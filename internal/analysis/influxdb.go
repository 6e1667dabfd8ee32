package analysis

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// influxDB asks InfluxDB: InfluxQL through the 1.x /query API when
// spec.provider.influxDB.database is set, Flux through the 2.x
// /api/v2/query API when org is. Both take the newest non-null value of
// the one series. A small client of ours over net/http: the 2.x client
// module brings a generated API and its dependencies for one request, and
// the annotated CSV it would parse is a few lines with encoding/csv.
func (q *Querier) influxDB(ctx context.Context, p Provider, r Request) (float64, error) {
	base := strings.TrimRight(p.Address, "/")
	if p.InfluxDB != nil && p.InfluxDB.Org != "" {
		return q.flux(ctx, p, base, r)
	}
	params := url.Values{"db": {p.InfluxDB.Database}, "q": {r.Query}, "epoch": {"s"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/query?"+params.Encode(), nil)
	if err != nil {
		return 0, err
	}
	_, b, err := q.send(req, p, nil)
	if err != nil {
		return 0, err
	}
	return influxQLValue(b)
}

// influxQLValue reads a 1.x answer: one statement, one series, one field.
func influxQLValue(b []byte) (float64, error) {
	var a struct {
		Error   string `json:"error"`
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Name    string              `json:"name"`
				Columns []string            `json:"columns"`
				Values  [][]json.RawMessage `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, fmt.Errorf("not an InfluxDB answer: %s", Snippet(b))
	}
	if a.Error != "" {
		return 0, errors.New(a.Error)
	}
	if len(a.Results) != 1 {
		return 0, fmt.Errorf("returned %d statements' results; send one statement", len(a.Results))
	}
	res := a.Results[0]
	if res.Error != "" {
		return 0, errors.New(res.Error)
	}
	switch len(res.Series) {
	case 0:
		return 0, ErrNoValues
	case 1:
	default:
		return 0, fmt.Errorf("returned %d series; aggregate to one (no GROUP BY tag)", len(res.Series))
	}
	s := res.Series[0]
	col := -1
	for i, c := range s.Columns {
		if c == "time" {
			continue
		}
		if col >= 0 {
			return 0, fmt.Errorf("returned the fields %s; select one", strings.Join(s.Columns, ", "))
		}
		col = i
	}
	if col < 0 {
		return 0, ErrNoValues
	}
	for i := len(s.Values) - 1; i >= 0; i-- {
		if row := s.Values[i]; col < len(row) && string(row[col]) != "null" {
			return parseNumber(strings.Trim(string(row[col]), `"`), s.Columns[col])
		}
	}
	return 0, ErrNoValues
}

// flux sends a Flux query to the 2.x API and reads its annotated CSV.
func (q *Querier) flux(ctx context.Context, p Provider, base string, r Request) (float64, error) {
	body, _ := json.Marshal(map[string]any{
		"query": r.Query, "type": "flux",
		"dialect": map[string]any{"header": true, "delimiter": ",", "annotations": []string{"datatype", "group", "default"}},
	})
	u := base + "/api/v2/query?" + url.Values{"org": {p.InfluxDB.Org}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/csv")
	status, b, err := q.send(req, p, func(status int) bool { return status >= 400 })
	if err != nil {
		return 0, err
	}
	if status >= 400 {
		var e struct{ Code, Message string }
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			return 0, fmt.Errorf("HTTP %d: %s: %s", status, e.Code, e.Message)
		}
		return 0, fmt.Errorf("HTTP %d: %s", status, Snippet(b))
	}
	return fluxValue(b)
}

// fluxValue reads annotated CSV: the _value of the last row of the one
// table. A table with an error column is the query's error.
func fluxValue(b []byte) (float64, error) {
	rd := csv.NewReader(bytes.NewReader(b))
	rd.FieldsPerRecord = -1
	var header []string
	var last string
	tables := map[string]bool{}
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("not annotated CSV: %w", err)
		}
		if len(rec) == 0 || (len(rec) == 1 && rec[0] == "") {
			header = nil // a blank line ends a table
			continue
		}
		if strings.HasPrefix(rec[0], "#") {
			header = nil // annotations start a table; its header follows
			continue
		}
		if header == nil {
			header = rec
			if !slices.Contains(header, "table") && !slices.Contains(header, "error") {
				return 0, fmt.Errorf("not annotated CSV (no table column): %s", Snippet(b))
			}
			continue
		}
		get := func(name string) (string, bool) {
			for i, h := range header {
				if h == name && i < len(rec) {
					return rec[i], true
				}
			}
			return "", false
		}
		if msg, ok := get("error"); ok && msg != "" {
			return 0, fmt.Errorf("flux: %s", msg)
		}
		v, ok := get("_value")
		if !ok {
			return 0, fmt.Errorf("the result has no _value column (columns %s)", strings.Join(header, ", "))
		}
		t, _ := get("table")
		tables[t] = true
		if v != "" {
			last = v
		}
	}
	if len(tables) > 1 {
		return 0, fmt.Errorf("returned %d tables; aggregate to one (group() then a reducer)", len(tables))
	}
	if last == "" {
		return 0, ErrNoValues
	}
	return parseNumber(last, "_value")
}
