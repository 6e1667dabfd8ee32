// Package webhook calls a Canary's webhooks: it builds the JSON payload,
// signs it with HMAC-SHA256 when the hook has a key, and POSTs it with a
// deadline on every attempt and retries for answers worth retrying.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(key, body)).
const SignatureHeader = "X-Sluice-Signature"

// Defaults for a hook that leaves them unset: the API's.
const (
	DefaultTimeout = v1alpha1.DefaultWebhookTimeout
	DefaultRetries = v1alpha1.DefaultWebhookRetries
)

// Payload is the JSON body of every call.
type Payload struct {
	// Type is the hook's type (confirm-rollout, rollout, event, ...).
	Type      string            `json:"type"`
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Revision  string            `json:"revision"`
	Phase     string            `json:"phase"`
	Weight    int32             `json:"weight"`
	Step      int32             `json:"step"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Event     *Event            `json:"event,omitempty"`
	// Timestamp is covered by the signature, so a receiver can refuse
	// replays of old requests.
	Timestamp time.Time `json:"timestamp"`
}

// Event is the Kubernetes Event an event hook is told about.
type Event struct {
	Type    string `json:"type"` // Normal or Warning
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Hook is one endpoint and how to call it.
type Hook struct {
	Name    string
	URL     string
	Timeout time.Duration
	Retries int
	// Key signs the body when not empty.
	Key []byte
}

// Sign returns the signature header's value for body.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature under key (a receiver's
// check, in constant time).
func Verify(key, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(key, body)), []byte(header))
}

// StatusError is a hook's non-2xx answer.
type StatusError struct {
	Code int
	// Body is the start of the answer's body (what a gate says to humans).
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("answered %d %s", e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Caller posts payloads. One Caller (one HTTP client, one connection pool)
// serves every hook of the controller.
type Caller struct {
	Client *http.Client
	// Backoff is the wait before the first retry, doubled for each next
	// one. Default 250ms.
	Backoff time.Duration
}

// NewCaller returns a Caller with its own connection pool.
func NewCaller() *Caller {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &Caller{Client: &http.Client{Transport: t}}
}

// Call POSTs p to h. It returns nil on a 2xx answer, a *StatusError for any
// other answer, or the transport's error; every error names the hook and
// its URL. An attempt that gets no answer, 429 or 5xx is retried up to
// h.Retries times; other answers are final.
func (c *Caller) Call(ctx context.Context, h Hook, p Payload) error {
	if p.Timestamp.IsZero() {
		p.Timestamp = time.Now().UTC()
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("webhook %s: encode payload: %w", h.Name, err)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 250 * time.Millisecond
	}
	var last error
	attempts := 0
	for attempt := 0; attempt <= h.Retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("webhook %s (%s): %w (last attempt: %w)", h.Name, h.URL, ctx.Err(), last)
			case <-t.C:
			}
			backoff *= 2
		}
		attempts++
		last = c.attempt(ctx, h, body, timeout)
		if last == nil {
			return nil
		}
		var se *StatusError
		if errors.As(last, &se) && se.Code != http.StatusTooManyRequests && se.Code < 500 {
			break
		}
	}
	tries := ""
	if attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", attempts)
	}
	return fmt.Errorf("webhook %s (%s)%s: %w", h.Name, h.URL, tries, last)
}

func (c *Caller) attempt(ctx context.Context, h Hook, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice")
	if len(h.Key) > 0 {
		req.Header.Set(SignatureHeader, Sign(h.Key, body))
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
			return fmt.Errorf("no answer within %s: %w", timeout, context.DeadlineExceeded)
		}
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
}
