package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/client-go/util/jsonpath"
)

// web asks any HTTP endpoint answering JSON: the rendered query is the
// path and query string, resolved against the provider's address (never
// another host, so the credentials go only where the template says), and
// spec.provider.web.jsonPath picks the value.
func (q *Querier) web(ctx context.Context, p Provider, r Request) (float64, error) {
	u, err := webURL(p.Address, r.Query)
	if err != nil {
		return 0, err
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, p.Web.GetMethod(), u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	_, b, err := q.send(req, p, nil)
	if err != nil {
		return 0, err
	}
	return jsonPathValue(b, p.Web.JSONPath)
}

// webURL resolves the rendered query against the address; a query naming
// another scheme or host is refused.
func webURL(address, query string) (string, error) {
	base, err := url.Parse(strings.TrimRight(address, "/") + "/")
	if err != nil {
		return "", fmt.Errorf("address %q: %w", address, err)
	}
	ref, err := url.Parse(strings.TrimLeft(query, "/"))
	if err != nil {
		return "", fmt.Errorf("the query is not a path and query string: %w", err)
	}
	if ref.Scheme != "" || ref.Host != "" {
		return "", fmt.Errorf("the query must be a path and query string under spec.provider.address, not a URL of its own (%s://%s)", ref.Scheme, ref.Host)
	}
	return base.ResolveReference(ref).String(), nil
}

// jsonPathValue decodes a JSON answer and takes the one number the
// JSONPath selects: a JSON number, or a string holding one. null, an
// empty selection or NaN are "no values".
func jsonPathValue(body []byte, path string) (float64, error) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return 0, fmt.Errorf("answer is not JSON: %s", Snippet(body))
	}
	jp := jsonpath.New("value")
	if err := jp.Parse(path); err != nil {
		return 0, fmt.Errorf("spec.provider.web.jsonPath %q: %w", path, err)
	}
	results, err := jp.FindResults(doc)
	if err != nil {
		if strings.Contains(err.Error(), "is not found") {
			return 0, fmt.Errorf("%w (jsonPath %s found nothing in %s)", ErrNoValues, path, Snippet(body))
		}
		return 0, fmt.Errorf("jsonPath %s: %w", path, err)
	}
	var vals []reflect.Value
	for _, r := range results {
		vals = append(vals, r...)
	}
	switch len(vals) {
	case 0:
		return 0, fmt.Errorf("%w (jsonPath %s found nothing)", ErrNoValues, path)
	case 1:
	default:
		return 0, fmt.Errorf("jsonPath %s selects %d values; select one", path, len(vals))
	}
	v := vals[0]
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0, fmt.Errorf("%w (jsonPath %s is null)", ErrNoValues, path)
		}
		v = v.Elem()
	}
	var s string
	switch x := v.Interface().(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("jsonPath %s selects a %s, not a number", path, v.Kind())
	}
	return parseNumber(s, "jsonPath "+path)
}

// parseNumber reads a value; NaN is "no values".
func parseNumber(s, what string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", what, s)
	}
	if f != f {
		return 0, fmt.Errorf("%w (%s is NaN)", ErrNoValues, what)
	}
	return f, nil
}
