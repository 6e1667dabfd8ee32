package analysis

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// DefaultTimeout bounds one query when the provider sets no timeout: the
// API's.
const DefaultTimeout = v1alpha1.DefaultQueryTimeout

// Provider is a resolved metrics provider: its address, credentials and
// limits. Two equal Providers share one HTTP client.
type Provider struct {
	Address            string
	BearerToken        string
	Username, Password string
	Headers            map[string]string
	Timeout            time.Duration
	InsecureSkipVerify bool
}

// key identifies a provider configuration (credentials hashed, never kept
// in clear in the key).
func (p Provider) key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%t", p.Address, p.BearerToken, p.Username, p.Password, p.Timeout, p.InsecureSkipVerify)
	for _, k := range slices.Sorted(maps.Keys(p.Headers)) {
		fmt.Fprintf(h, "\x00%s=%s", k, p.Headers[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Querier asks providers for single values. It is safe for concurrent use;
// one Querier serves the whole controller.
type Querier struct {
	// sem bounds concurrent requests to all providers together.
	sem chan struct{}

	mu        sync.Mutex
	clients   map[string]*http.Client
	cache     map[string]*entry
	now       func() time.Time
	lastSweep time.Time
}

// entry is one cached (provider, query) result. done is closed when the
// request finishes; callers arriving meanwhile wait for it instead of
// sending their own.
type entry struct {
	done    chan struct{}
	value   float64
	err     error
	expires time.Time
}

// NewQuerier makes a Querier allowing at most maxConcurrent requests in
// flight. now is the clock (time.Now when nil).
func NewQuerier(maxConcurrent int, now func() time.Time) *Querier {
	if maxConcurrent <= 0 {
		maxConcurrent = 16
	}
	if now == nil {
		now = time.Now
	}
	return &Querier{
		sem:     make(chan struct{}, maxConcurrent),
		clients: map[string]*http.Client{},
		cache:   map[string]*entry{},
		now:     now,
	}
}

// Query returns the single value of an instant PromQL query. A result
// younger than ttl for the same provider and query is reused, and
// concurrent identical queries send one request. Errors are cached for the
// same ttl: a provider that is down is not hammered by every canary.
func (q *Querier) Query(ctx context.Context, p Provider, promql string, ttl time.Duration) (float64, error) {
	key := p.key() + "\x00" + promql
	q.mu.Lock()
	e, ok := q.cache[key]
	if ok {
		select {
		case <-e.done:
			if q.now().Before(e.expires) {
				q.mu.Unlock()
				return e.value, e.err
			}
			ok = false // expired: ask again
		default: // in flight: wait for it below
		}
	}
	if !ok {
		e = &entry{done: make(chan struct{})}
		q.cache[key] = e
		q.mu.Unlock()
		// The request serves every caller waiting on it: one caller giving
		// up must not fail it for the others. It keeps its own deadline.
		e.value, e.err = q.fetch(context.WithoutCancel(ctx), p, promql)
		e.expires = q.now().Add(ttl)
		close(e.done)
		q.sweep()
		return e.value, e.err
	}
	q.mu.Unlock()
	select {
	case <-e.done:
		return e.value, e.err
	case <-ctx.Done():
		return 0, fmt.Errorf("query %q: %w", promql, ctx.Err())
	}
}

// sweep drops expired entries so the cache holds only live queries. It
// walks the cache at most once a minute, so its cost does not grow with
// the number of queries times the number of canaries.
func (q *Querier) sweep() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	if now.Sub(q.lastSweep) < time.Minute {
		return
	}
	q.lastSweep = now
	for k, e := range q.cache {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(q.cache, k)
			}
		default:
		}
	}
}

func (q *Querier) client(p Provider) *http.Client {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := p.key()
	if c, ok := q.clients[k]; ok {
		return c
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cap(q.sem)
	if p.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it, per provider
	}
	c := &http.Client{Transport: tr}
	q.clients[k] = c
	return c
}

// fetch sends one query, within the bound on concurrent requests and the
// provider's timeout.
func (q *Querier) fetch(ctx context.Context, p Provider, promql string) (float64, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case q.sem <- struct{}{}:
		defer func() { <-q.sem }()
	case <-ctx.Done():
		return 0, fmt.Errorf("query %q: waiting for a free query slot: %w", promql, ctx.Err())
	}
	u := strings.TrimRight(p.Address, "/") + "/api/v1/query?query=" + url.QueryEscape(promql)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("query %q: %w", promql, err)
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	switch {
	case p.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+p.BearerToken)
	case p.Username != "":
		req.SetBasicAuth(p.Username, p.Password)
	}
	resp, err := q.client(p).Do(req)
	if err != nil {
		return 0, fmt.Errorf("query %q at %s: %w", promql, p.Address, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("query %q at %s: read answer: %w", promql, p.Address, err)
	}
	return parseAnswer(promql, resp.StatusCode, body)
}

// parseAnswer reads Prometheus's instant-query answer down to one value.
func parseAnswer(promql string, status int, body []byte) (float64, error) {
	var a struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("query %q: HTTP %d, not a Prometheus answer: %.200s", promql, status, body)
	}
	if a.Status != "success" {
		return 0, fmt.Errorf("query %q: %s: %s", promql, a.ErrorType, a.Error)
	}
	var raw [2]any
	switch a.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(a.Data.Result, &raw); err != nil {
			return 0, fmt.Errorf("query %q: scalar: %w", promql, err)
		}
	case "vector":
		var v []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(a.Data.Result, &v); err != nil {
			return 0, fmt.Errorf("query %q: vector: %w", promql, err)
		}
		switch len(v) {
		case 0:
			return 0, fmt.Errorf("query %q: %w", promql, ErrNoValues)
		case 1:
			raw = v[0].Value
		default:
			return 0, fmt.Errorf("query %q returned %d series; aggregate it to one (for example sum(...))", promql, len(v))
		}
	default:
		return 0, fmt.Errorf("query %q returned a %s; want a scalar or a one-series vector", promql, a.Data.ResultType)
	}
	s, _ := raw[1].(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("query %q: value %q: %w", promql, s, err)
	}
	if math.IsNaN(f) {
		return 0, fmt.Errorf("query %q: %w", promql, ErrNoValues)
	}
	return f, nil
}
