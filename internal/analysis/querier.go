package analysis

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
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

// maxAnswer bounds the answer read from any provider: a query that comes
// to one value never needs more, and a runaway one must not cost the
// controller its memory.
const maxAnswer = 4 << 20

// Provider is a resolved metrics provider: the MetricTemplate's
// spec.provider and the data of the Secret it names. Two equal Providers
// share one HTTP client.
type Provider struct {
	v1alpha1.MetricProvider
	// Secret is the data of spec.provider.secretRef (nil without one).
	Secret map[string][]byte
}

// Prometheus is the provider of a builtin metric: Prometheus at address,
// without credentials.
func Prometheus(address string) Provider {
	return Provider{MetricProvider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderPrometheus, Address: address}}
}

// kind is the provider's type, prometheus when unset.
func (p Provider) kind() string {
	if p.Type == "" {
		return v1alpha1.ProviderPrometheus
	}
	return p.Type
}

// SecretValue is the first of the keys the Secret has, as a string.
func (p Provider) SecretValue(keys ...string) string {
	for _, k := range keys {
		if v := p.Secret[k]; len(v) > 0 {
			return string(v)
		}
	}
	return ""
}

// Datadog's keys: Sluice's names, or Flagger's so that its Secrets serve
// unchanged.
var (
	datadogAPIKey = []string{"api-key", "datadog_api_key"}
	datadogAppKey = []string{"app-key", "datadog_application_key"}
)

// Key identifies a provider configuration (credentials hashed, never kept
// in clear in the key).
func (p Provider) Key() string {
	h := sha256.New()
	spec := p.MetricProvider
	spec.SecretRef = nil
	b, _ := json.Marshal(spec) // plain data: cannot fail
	h.Write(b)
	for _, k := range slices.Sorted(maps.Keys(p.Secret)) {
		fmt.Fprintf(h, "\x00%s=%s", k, p.Secret[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// redact replaces every Secret value in s: a provider echoing a key in
// its error must not put it in a Canary's status.
func (p Provider) redact(s string) string {
	for _, v := range p.Secret {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, string(v), "[redacted]")
		}
	}
	return s
}

// Request is one query: the rendered query, the rendered body (web), and
// the window the value is taken over (providers that take a time range:
// datadog, newrelic, graphite, cloudwatch).
type Request struct {
	Query  string
	Body   string
	Window time.Duration
	// Step, when set, asks for samples over the window, one per step
	// (Samples), instead of one value.
	Step time.Duration
	// From, when later than the window's start, starts the samples there
	// (the step's start: no sample of the copy before it took this
	// step's traffic, or of the last revision).
	From time.Time
	// NotBefore, when set, refuses a cached result fetched before it (a
	// check round's start: a round judges what was measured during it,
	// never the last round's or the last release's answer). A rate
	// limit's error is kept until its time all the same.
	NotBefore time.Time
}

func (r Request) key() string {
	return r.Query + "\x00" + r.Body + "\x00" + r.Window.String() + "\x00" + r.Step.String() + "\x00" + r.From.String()
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

	// fetchers answer the provider types registered (Register).
	fetchers map[string]Fetcher
}

// entry is one cached (provider, query) result. done is closed when the
// request finishes; callers arriving meanwhile wait for it instead of
// sending their own.
type entry struct {
	done    chan struct{}
	fetched time.Time
	value   float64
	samples []float64
	err     error
	expires time.Time
}

// Fetcher answers the queries of a provider type the Querier does not
// build in (cloudwatch: its SDK stays out of what else imports this
// package). hc is the provider's HTTP client (credentials headers, bounds,
// rate limits); now is the Querier's clock.
type Fetcher interface {
	Fetch(ctx context.Context, hc *http.Client, p Provider, r Request, now time.Time) (float64, error)
}

// Register makes typ answered by f. Call it before the first query.
func (q *Querier) Register(typ string, f Fetcher) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fetchers == nil {
		q.fetchers = map[string]Fetcher{}
	}
	q.fetchers[typ] = f
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

// Query returns the single value a provider gives for a query. A result
// younger than ttl for the same provider and request is reused, and
// concurrent identical queries send one request. Errors are cached for the
// same ttl (or until the time a rate-limited provider said to come back,
// if later): a provider that is down is not hammered by every canary.
func (q *Querier) Query(ctx context.Context, p Provider, r Request, ttl time.Duration) (float64, error) {
	r.Step = 0
	e, err := q.lookup(ctx, p, r, ttl, func(ctx context.Context, e *entry) { e.value, e.err = q.fetch(ctx, p, r) })
	if err != nil {
		return 0, err
	}
	return e.value, e.err
}

// Samples returns a query's values over the window, one per r.Step (every
// series' values, for a query giving several), for the statistical judge;
// cached and shared like Query. Only providers with range queries answer
// samples: prometheus.
func (q *Querier) Samples(ctx context.Context, p Provider, r Request, ttl time.Duration) ([]float64, error) {
	if r.Step <= 0 {
		return nil, fmt.Errorf("query %q: samples need a step", r.Query)
	}
	e, err := q.lookup(ctx, p, r, ttl, func(ctx context.Context, e *entry) { e.samples, e.err = q.fetchSamples(ctx, p, r) })
	if err != nil {
		return nil, err
	}
	return e.samples, e.err
}

// lookup finds the live cache entry of (provider, request), or makes one
// and fills it with fill. The returned error is only the caller's context
// ending while it waited for another caller's request.
func (q *Querier) lookup(ctx context.Context, p Provider, r Request, ttl time.Duration, fill func(context.Context, *entry)) (*entry, error) {
	key := p.Key() + "\x00" + r.key()
	q.mu.Lock()
	e, ok := q.cache[key]
	if ok {
		select {
		case <-e.done:
			rl := (*RateLimitError)(nil)
			if q.now().Before(e.expires) && (!e.fetched.Before(r.NotBefore) || errors.As(e.err, &rl)) {
				q.mu.Unlock()
				return e, nil
			}
			ok = false // expired, or older than the caller takes: ask again
		default: // in flight: wait for it below
		}
	}
	if !ok {
		e = &entry{done: make(chan struct{}), fetched: q.now()}
		q.cache[key] = e
		q.mu.Unlock()
		// The request serves every caller waiting on it: one caller giving
		// up must not fail it for the others. It keeps its own deadline.
		fill(context.WithoutCancel(ctx), e)
		e.expires = q.now().Add(ttl)
		if rl := (*RateLimitError)(nil); errors.As(e.err, &rl) && rl.Until.After(e.expires) {
			e.expires = rl.Until
		}
		close(e.done)
		q.sweep()
		return e, nil
	}
	q.mu.Unlock()
	select {
	case <-e.done:
		return e, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("query %q: %w", r.Query, ctx.Err())
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

// fetch sends one query, within the bound on concurrent requests and the
// provider's timeout, to the provider's own client.
func (q *Querier) fetch(ctx context.Context, p Provider, r Request) (float64, error) {
	var v float64
	err := q.bounded(ctx, p, r, func(ctx context.Context) (err error) {
		switch p.kind() {
		case v1alpha1.ProviderPrometheus:
			v, err = q.prometheus(ctx, p, r)
		case v1alpha1.ProviderWeb:
			v, err = q.web(ctx, p, r)
		case v1alpha1.ProviderDatadog:
			v, err = q.datadog(ctx, p, r)
		case v1alpha1.ProviderNewRelic:
			v, err = q.newRelic(ctx, p, r)
		case v1alpha1.ProviderGraphite:
			v, err = q.graphite(ctx, p, r)
		case v1alpha1.ProviderInfluxDB:
			v, err = q.influxDB(ctx, p, r)
		default:
			q.mu.Lock()
			f, ok := q.fetchers[p.kind()]
			q.mu.Unlock()
			if !ok {
				return fmt.Errorf("the %s provider is not built into this binary", p.kind())
			}
			v, err = f.Fetch(ctx, q.client(p), p, r, q.now())
		}
		return err
	})
	return v, err
}

// fetchSamples asks for samples, like fetch.
func (q *Querier) fetchSamples(ctx context.Context, p Provider, r Request) ([]float64, error) {
	var v []float64
	err := q.bounded(ctx, p, r, func(ctx context.Context) (err error) {
		switch p.kind() {
		case v1alpha1.ProviderPrometheus:
			v, err = q.prometheusRange(ctx, p, r)
		default:
			err = fmt.Errorf("the %s provider gives no samples; compare needs a prometheus MetricTemplate", p.kind())
		}
		return err
	})
	return v, err
}

// bounded runs one request within the bound on concurrent requests and
// the provider's timeout; its error names the provider and the query,
// credentials redacted.
func (q *Querier) bounded(ctx context.Context, p Provider, r Request, do func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.GetTimeout())
	defer cancel()
	select {
	case q.sem <- struct{}{}:
		defer func() { <-q.sem }()
	case <-ctx.Done():
		return fmt.Errorf("query %q: waiting for a free query slot: %w", r.Query, ctx.Err())
	}
	if err := do(ctx); err != nil {
		return &queryError{provider: p.kind(), query: r.Query, address: p.Address, msg: p.redact(err.Error()), err: err}
	}
	return nil
}

// queryError is a failed query: the provider's type, the query and the
// provider's own words, credentials redacted.
type queryError struct {
	provider, query, address, msg string
	err                           error
}

func (e *queryError) Error() string {
	if e.address != "" && !strings.Contains(e.msg, e.address) {
		return fmt.Sprintf("%s query %q at %s: %s", e.provider, e.query, e.address, e.msg)
	}
	return fmt.Sprintf("%s query %q: %s", e.provider, e.query, e.msg)
}

func (e *queryError) Unwrap() error { return e.err }

// RateLimitError is a provider answering "too many requests". Until is
// when it said to come back (Retry-After or its own reset header); the
// Querier keeps the error cached until then.
type RateLimitError struct {
	Status int
	Until  time.Time
	Body   string
}

func (e *RateLimitError) Error() string {
	msg := fmt.Sprintf("rate limited (HTTP %d), retry after %s", e.Status, e.Until.UTC().Format(time.RFC3339))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// client is the provider's HTTP client: its own TLS settings, its headers
// and credentials added to every request (transport), answers bounded and
// rate limits turned into RateLimitError.
func (q *Querier) client(p Provider) *http.Client {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := p.Key()
	if c, ok := q.clients[k]; ok {
		return c
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cap(q.sem)
	if p.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it, per provider
	}
	c := &http.Client{Transport: &transport{base: tr, p: p, now: q.now}}
	q.clients[k] = c
	return c
}

// transport adds a provider's headers and credentials, bounds the answer,
// and turns 429 into a RateLimitError.
type transport struct {
	base http.RoundTripper
	p    Provider
	now  func() time.Time
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.p.Headers {
		req.Header.Set(k, v)
	}
	authorize(req, t.p)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &RateLimitError{Status: resp.StatusCode, Until: retryAfter(resp.Header, t.now()), Body: strings.TrimSpace(string(b))}
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxAnswer}
	return resp, nil
}

// authorize sets a request's credentials the way its provider takes them.
func authorize(req *http.Request, p Provider) {
	switch p.kind() {
	case v1alpha1.ProviderDatadog:
		req.Header.Set("DD-API-KEY", p.SecretValue(datadogAPIKey...))
		req.Header.Set("DD-APPLICATION-KEY", p.SecretValue(datadogAppKey...))
	case v1alpha1.ProviderNewRelic:
		req.Header.Set("API-Key", p.SecretValue("api-key"))
	case v1alpha1.ProviderInfluxDB:
		switch {
		case p.SecretValue("token") != "":
			req.Header.Set("Authorization", "Token "+p.SecretValue("token"))
		case p.SecretValue("username") != "":
			req.SetBasicAuth(p.SecretValue("username"), p.SecretValue("password"))
		}
	default:
		switch {
		case p.SecretValue("token") != "":
			req.Header.Set("Authorization", "Bearer "+p.SecretValue("token"))
		case p.SecretValue("username") != "":
			req.SetBasicAuth(p.SecretValue("username"), p.SecretValue("password"))
		}
	}
}

// CheckSecret says what the Secret of a provider's secretRef lacks,
// naming the keys it needs; nil when it has them.
func CheckSecret(p Provider) error {
	has := func(k ...string) bool { return p.SecretValue(k...) != "" }
	switch p.kind() {
	case v1alpha1.ProviderDatadog:
		if !has(datadogAPIKey...) || !has(datadogAppKey...) {
			return errors.New("needs keys api-key and app-key (a Datadog API key and application key)")
		}
	case v1alpha1.ProviderNewRelic:
		if !has("api-key") || !has("account-id") {
			return errors.New("needs keys api-key (a New Relic user key) and account-id")
		}
		if _, err := strconv.ParseInt(p.SecretValue("account-id"), 10, 64); err != nil {
			return errors.New("key account-id must be the account's number")
		}
	case v1alpha1.ProviderCloudWatch:
		if !has("aws-access-key-id") || !has("aws-secret-access-key") {
			return errors.New("needs keys aws-access-key-id and aws-secret-access-key (or no secretRef: the pod's own identity)")
		}
	case v1alpha1.ProviderInfluxDB:
		if p.InfluxDB != nil && p.InfluxDB.Org != "" && !has("token") {
			return errors.New("needs key token (an InfluxDB API token)")
		}
		fallthrough
	default:
		if !has("token") && !has("username") {
			return errors.New("has neither a token key nor username/password keys")
		}
	}
	return nil
}

// retryAfter is when a rate-limited provider said to come back: the
// Retry-After header (seconds or a date), or a vendor's reset header
// (seconds until the window resets); a minute when none is given.
func retryAfter(h http.Header, now time.Time) time.Time {
	for _, name := range []string{"Retry-After", "X-RateLimit-Reset", "X-RateLimit-Reset-After"} {
		v := h.Get(name)
		if v == "" {
			continue
		}
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 86400 {
			return now.Add(time.Duration(s * float64(time.Second)))
		}
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	return now.Add(time.Minute)
}

// boundedBody fails a read past the bound instead of truncating the
// answer silently.
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("answer larger than %d bytes: narrow the query", maxAnswer)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left <= 0 && err == nil {
		// Only an answer that has more to give is too large.
		var one [1]byte
		if m, _ := b.ReadCloser.Read(one[:]); m > 0 {
			return n, fmt.Errorf("answer larger than %d bytes: narrow the query", maxAnswer)
		}
	}
	return n, err
}

// send sends a request with the provider's client and reads the whole
// answer. A status outside 2xx is an error carrying the start of the body
// (the provider's own message), unless keep says the caller reads it.
func (q *Querier) send(req *http.Request, p Provider, keep func(status int) bool) (int, []byte, error) {
	resp, err := q.client(p).Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("at %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("at %s: read answer: %w", req.URL.Host, err)
	}
	if (resp.StatusCode < 200 || resp.StatusCode > 299) && (keep == nil || !keep(resp.StatusCode)) {
		return resp.StatusCode, body, fmt.Errorf("HTTP %d from %s: %s", resp.StatusCode, req.URL.Host, Snippet(body))
	}
	return resp.StatusCode, body, nil
}

// Snippet is the start of an answer, on one line, for an error message.
func Snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "(empty answer)"
	}
	return s
}
