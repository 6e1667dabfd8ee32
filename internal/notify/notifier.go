// Package notify posts a Canary's events to chat services and webhooks
// (spec.analysis.alerts naming AlertProviders): each message in the
// service's own format (format.go), filtered by severity, deduplicated and
// rate-limited per provider, retried on failure, and never in the way of a
// release: Notify only queues; a bounded pool of workers posts.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/secretcache"
)

// Event is what the engine reports, as the notifier needs it.
type Event struct {
	Warning         bool
	Reason, Message string
}

// Notifier posts events. Start it (a manager Runnable) before Notify.
type Notifier struct {
	// Reader reads AlertProviders (the manager's cache); SecretReader
	// reads their Secrets (past the cache, which keeps Secrets without
	// their data), at most once per SecretTTL.
	Reader, SecretReader client.Reader
	// HTTP posts messages; nil means a client with a 10 s timeout.
	HTTP *http.Client
	// Metrics counts the outcomes; nil for none.
	Metrics *Metrics
	// Workers post in parallel (default 2); Queue bounds what waits
	// (default 1000).
	Workers, Queue int
	// Attempts per message (default 3) and the first retry's delay
	// (default 1 s, doubled each time; a 429's Retry-After wins, up to
	// MaxRetryAfter, default 1 m).
	Attempts      int
	Backoff       time.Duration
	MaxRetryAfter time.Duration
	// SecretTTL is how long a Secret read is reused (default 1 m).
	SecretTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	once     sync.Once
	jobs     chan job
	mu       sync.Mutex
	seen     map[string]time.Time
	swept    time.Time
	limiters map[string]*rate.Limiter
	secrets  *secretcache.Cache
}

type job struct {
	canary *v1alpha1.Canary
	event  Event
	at     time.Time
}

func (n *Notifier) init() {
	n.once.Do(func() {
		if n.Workers <= 0 {
			n.Workers = 2
		}
		if n.Queue <= 0 {
			n.Queue = 1000
		}
		if n.Attempts <= 0 {
			n.Attempts = 3
		}
		if n.Backoff <= 0 {
			n.Backoff = time.Second
		}
		if n.MaxRetryAfter <= 0 {
			n.MaxRetryAfter = time.Minute
		}
		if n.SecretTTL <= 0 {
			n.SecretTTL = time.Minute
		}
		if n.HTTP == nil {
			n.HTTP = &http.Client{Timeout: 10 * time.Second}
		}
		if n.Now == nil {
			n.Now = time.Now
		}
		n.jobs = make(chan job, n.Queue)
		n.seen = map[string]time.Time{}
		n.limiters = map[string]*rate.Limiter{}
		n.secrets = &secretcache.Cache{Reader: n.SecretReader, TTL: n.SecretTTL, Now: n.Now}
	})
}

// Start runs the workers until ctx ends.
func (n *Notifier) Start(ctx context.Context) error {
	n.init()
	var wg sync.WaitGroup
	for range n.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.jobs:
					n.deliver(ctx, j)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Notify queues an event of c (its status as just decided) for the
// Canary's alerts. It never blocks: with the queue full the event is
// dropped and counted.
func (n *Notifier) Notify(c *v1alpha1.Canary, e Event) {
	if c.Spec.Analysis == nil || len(c.Spec.Analysis.Alerts) == 0 {
		return
	}
	n.init()
	select {
	case n.jobs <- job{canary: c.DeepCopy(), event: e, at: n.Now()}:
	default:
		for _, a := range c.Spec.Analysis.Alerts {
			n.count("", a.Name, OutcomeDropped)
		}
	}
}

// Severity is an event's severity: error for the event that failed a
// release (its reason is the Failed status's), warn for other warnings,
// info otherwise.
func Severity(c *v1alpha1.Canary, e Event) string {
	switch {
	case e.Warning && c.Status.Phase == v1alpha1.PhaseFailed && e.Reason == c.Status.Reason:
		return v1alpha1.SeverityError
	case e.Warning:
		return v1alpha1.SeverityWarn
	}
	return v1alpha1.SeverityInfo
}

var severityRank = map[string]int{v1alpha1.SeverityInfo: 0, v1alpha1.SeverityWarn: 1, v1alpha1.SeverityError: 2}

// deliver posts one event to each of the Canary's alerts that wants it.
func (n *Notifier) deliver(ctx context.Context, j job) {
	c, sev := j.canary, Severity(j.canary, j.event)
	for _, a := range c.Spec.Analysis.Alerts {
		if severityRank[sev] < severityRank[a.GetSeverity()] {
			continue
		}
		if err := n.post(ctx, c, a, j, sev); err != nil {
			log.FromContext(ctx).Error(err, "Alert not posted", "canary", client.ObjectKeyFromObject(c), "alert", a.Name, "reason", j.event.Reason)
		}
	}
}

func (n *Notifier) post(ctx context.Context, c *v1alpha1.Canary, a v1alpha1.Alert, j job, sev string) error {
	key := types.NamespacedName{Namespace: a.ProviderRef.GetNamespace(c.Namespace), Name: a.ProviderRef.Name}
	var p v1alpha1.AlertProvider
	if err := n.Reader.Get(ctx, key, &p); err != nil {
		n.count("", a.Name, OutcomeFailed)
		return fmt.Errorf("alert provider %s: %w", key, err)
	}
	typ := p.Spec.Type
	data, err := n.secret(ctx, types.NamespacedName{Namespace: key.Namespace, Name: p.Spec.SecretRef.Name})
	if err != nil {
		n.count(typ, a.Name, OutcomeFailed)
		return fmt.Errorf("alert provider %s: secret %s: %w", key, p.Spec.SecretRef.Name, err)
	}
	address := strings.TrimSpace(string(data["address"]))
	if address == "" {
		n.count(typ, a.Name, OutcomeFailed)
		return fmt.Errorf("alert provider %s: secret %s has no address key (the webhook URL)", key, p.Spec.SecretRef.Name)
	}
	// The same message to the same destination once per window.
	h := sha256.Sum256([]byte(strings.Join([]string{key.String(), c.Namespace, c.Name, j.event.Reason, j.event.Message}, "\x00")))
	dedup := hex.EncodeToString(h[:])
	n.mu.Lock()
	if last, ok := n.seen[dedup]; ok && j.at.Sub(last) < p.Spec.GetDedupWindow() {
		n.mu.Unlock()
		n.count(typ, a.Name, OutcomeDeduplicated)
		return nil
	}
	n.seen[dedup] = j.at
	if j.at.Sub(n.swept) > time.Minute { // keep the map to live windows
		n.swept = j.at
		for k, t := range n.seen {
			if j.at.Sub(t) > 24*time.Hour {
				delete(n.seen, k)
			}
		}
	}
	lim, ok := n.limiters[key.String()]
	perMinute := p.Spec.GetRatePerMinute()
	if !ok || lim.Limit() != rate.Limit(float64(perMinute)/60) {
		lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), 5)
		n.limiters[key.String()] = lim
	}
	n.mu.Unlock()
	if err := lim.Wait(ctx); err != nil {
		n.count(typ, a.Name, OutcomeDropped)
		return fmt.Errorf("rate limit of %s: %w", key, err)
	}
	msg := n.message(c, j, sev, p)
	body, err := Render(typ, msg, Options{Channel: p.Spec.Channel, Username: p.Spec.Username})
	if err != nil {
		n.count(typ, a.Name, OutcomeFailed)
		return err
	}
	err = n.send(ctx, address, string(data["token"]), body)
	if err != nil {
		n.count(typ, a.Name, OutcomeFailed)
		// The URL is a credential: never in a log line.
		return fmt.Errorf("alert provider %s (%s): %s", key, typ, strings.ReplaceAll(err.Error(), address, "[address]"))
	}
	n.count(typ, a.Name, OutcomeSent)
	return nil
}

// message is the event with what a reader needs around it.
func (n *Notifier) message(c *v1alpha1.Canary, j job, sev string, p v1alpha1.AlertProvider) Message {
	m := Message{Namespace: c.Namespace, Canary: c.Name, Revision: c.Status.CanaryRevision, Phase: string(c.Status.Phase),
		Weight: c.Status.CanaryWeight, Severity: sev, Reason: j.event.Reason, Text: j.event.Message, Time: j.at}
	for _, s := range c.Status.Metrics {
		if !s.Passed && !s.Skipped {
			m.Checks = append(m.Checks, Check{Name: s.Name, Value: s.Value, Message: s.Message})
		}
	}
	if p.Spec.LinkTemplate != "" {
		t, err := template.New("link").Option("missingkey=error").Funcs(template.FuncMap{
			"namespace": func() string { return c.Namespace },
			"name":      func() string { return c.Name },
			"revision":  func() string { return c.Status.CanaryRevision },
		}).Parse(p.Spec.LinkTemplate)
		var b strings.Builder
		if err == nil && t.Execute(&b, nil) == nil {
			m.Link = b.String()
		}
	}
	return m
}

// send posts body, retrying no answer, 429 and 5xx: a 429's Retry-After
// is waited for (up to MaxRetryAfter), otherwise the backoff doubles.
func (n *Notifier) send(ctx context.Context, address, token string, body []byte) error {
	wait := n.Backoff
	var last error
	for attempt := 1; attempt <= n.Attempts; attempt++ {
		retryAfter, err := n.attempt(ctx, address, token, body)
		if err == nil {
			return nil
		}
		last = err
		var final *finalError
		if errors.As(err, &final) || attempt == n.Attempts {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = min(retryAfter, n.MaxRetryAfter)
		}
		wait *= 2
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return last
}

// finalError is an answer no retry changes (a 4xx other than 429).
type finalError struct{ msg string }

func (e *finalError) Error() string { return e.msg }

func (n *Notifier) attempt(ctx context.Context, address, token string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, address, bytes.NewReader(body))
	if err != nil {
		return 0, &finalError{msg: "the address is not a URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := n.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	answer := strings.Join(strings.Fields(string(b)), " ")
	switch {
	case resp.StatusCode/100 == 2:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		var d time.Duration
		if s, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && s >= 0 {
			d = time.Duration(s * float64(time.Second))
		}
		return d, fmt.Errorf("HTTP 429: %s", answer)
	case resp.StatusCode >= 500:
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, answer)
	}
	return 0, &finalError{msg: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, answer)}
}

func (n *Notifier) secret(ctx context.Context, key types.NamespacedName) (map[string][]byte, error) {
	return n.secrets.Get(ctx, key)
}

// Outcomes of a notification, the label of sluice_notifications_total.
const (
	OutcomeSent         = "sent"
	OutcomeFailed       = "failed"
	OutcomeDeduplicated = "deduplicated"
	OutcomeDropped      = "dropped"
)

// Metrics are the notifier's Prometheus metrics.
type Metrics struct {
	// Notifications counts messages by provider type, alert and outcome.
	Notifications *prometheus.CounterVec
}

// NewMetrics makes the metrics.
func NewMetrics() *Metrics {
	return &Metrics{Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_notifications_total",
		Help: "Notifications of Canary events by provider type, alert and outcome (sent, failed after its retries, deduplicated, dropped when the queue was full or the rate limit wait ended).",
	}, []string{"type", "alert", "outcome"})}
}

// Register adds the metrics to reg (controller-runtime's registry when
// nil).
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if reg == nil {
		reg = metrics.Registry
	}
	return reg.Register(m.Notifications)
}

func (n *Notifier) count(typ, alert, outcome string) {
	if n.Metrics != nil {
		n.Metrics.Notifications.WithLabelValues(typ, alert, outcome).Inc()
	}
}
