// Package analysis answers "is this release healthy?" from metrics: it
// renders a check's query, asks the metrics provider (with one reused HTTP
// client per provider, a bound on concurrent queries, a deadline on each,
// and a cache so many canaries asking the same thing cost one request), and
// judges the value against the check's threshold or expressions.
//
// A query that errors, times out or returns no value is never a pass.
package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Vars are what a query template can use.
type Vars struct {
	Namespace string
	Name      string
	Target    string
	Service   string
	Interval  time.Duration
	// Copy is "canary" or "primary" when a compared metric is asked of
	// one copy ({{ copy }}); empty otherwise.
	Copy string
	// Variables are the Canary's templateVariables, available as fields:
	// {{ .name }}.
	Variables map[string]string
}

// Render expands a query template. An unknown variable is an error naming
// it, never an empty string.
func Render(query string, v Vars) (string, error) {
	funcs := template.FuncMap{
		"namespace": func() string { return v.Namespace },
		"name":      func() string { return v.Name },
		"target":    func() string { return v.Target },
		"service":   func() string { return v.Service },
		"interval":  func() string { return promDuration(v.Interval) },
		"copy": func() (string, error) {
			if v.Copy == "" {
				return "", errors.New("{{ copy }} is only set for a metric with compare")
			}
			return v.Copy, nil
		},
	}
	t, err := template.New("query").Funcs(funcs).Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("parse query template: %w", err)
	}
	data := map[string]string{}
	for k, val := range v.Variables {
		data[k] = val
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return "", fmt.Errorf("render query template: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// promDuration writes a duration the way PromQL range selectors accept it
// (1m, 30s, 1h30m): whole seconds, largest units first.
func promDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s <= 0 {
		s = 1
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if s >= u.n {
			fmt.Fprintf(&b, "%d%s", s/u.n, u.unit)
			s %= u.n
		}
	}
	return b.String()
}

// ErrNoValues is returned when a query has no value: no series, or NaN (a
// rate over no requests). It is a failed check, never a pass.
var ErrNoValues = errors.New("no values: is the canary receiving traffic?")
