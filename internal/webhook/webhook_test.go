package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A receiver verifies the signature over the exact bytes it got, and the
// payload carries every field.
func TestCallSignsAndReceiverVerifies(t *testing.T) {
	key := []byte("s3cret")
	var got Payload
	var verified, tampered atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(SignatureHeader)
		verified.Store(Verify(key, body, sig))
		tampered.Store(Verify(key, append(body, ' '), sig) || Verify([]byte("other"), body, sig))
		_ = json.Unmarshal(body, &got)
	}))
	defer srv.Close()

	c := NewCaller()
	p := Payload{Type: "rollout", Name: "web", Namespace: "prod", Revision: "abc", Phase: "Progressing",
		Weight: 20, Step: 1, Metadata: map[string]string{"team": "a"}}
	if err := c.Call(context.Background(), Hook{Name: "h", URL: srv.URL, Key: key}, p); err != nil {
		t.Fatal(err)
	}
	if !verified.Load() {
		t.Fatal("the receiver could not verify the signature")
	}
	if tampered.Load() {
		t.Fatal("a changed body or another key verified")
	}
	if got.Name != "web" || got.Namespace != "prod" || got.Revision != "abc" || got.Phase != "Progressing" ||
		got.Weight != 20 || got.Step != 1 || got.Metadata["team"] != "a" || got.Timestamp.IsZero() {
		t.Fatalf("payload = %+v", got)
	}
}

func TestCallWithoutKeySendsNoSignature(t *testing.T) {
	var header atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header.Store(r.Header.Get(SignatureHeader))
	}))
	defer srv.Close()
	if err := NewCaller().Call(context.Background(), Hook{Name: "h", URL: srv.URL}, Payload{}); err != nil {
		t.Fatal(err)
	}
	if h := header.Load().(string); h != "" {
		t.Fatalf("signature %q sent without a key", h)
	}
}

// 5xx and 429 are retried; other answers are final; the error names the
// hook, its URL, the status and the body.
func TestCallRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		codes    []int
		retries  int
		calls    int32
		wantErr  string
		wantCode int
	}{
		{"5xx then ok", []int{503, 200}, 2, 2, "", 0},
		{"429 then ok", []int{429, 204}, 1, 2, "", 0},
		{"5xx every time", []int{500, 502, 503}, 2, 3, "after 3 attempts", 503},
		{"403 is final", []int{403, 200}, 2, 1, "answered 403 Forbidden: closed", 403},
		{"no retries", []int{500, 200}, 0, 1, "answered 500", 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := n.Add(1) - 1
				w.WriteHeader(tc.codes[i])
				_, _ = w.Write([]byte("closed\n"))
			}))
			defer srv.Close()
			c := NewCaller()
			c.Backoff = time.Millisecond
			err := c.Call(context.Background(), Hook{Name: "gate", URL: srv.URL, Retries: tc.retries}, Payload{})
			if n.Load() != tc.calls {
				t.Fatalf("%d calls, want %d", n.Load(), tc.calls)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "webhook gate ("+srv.URL+")") {
				t.Fatalf("err = %v, want it to contain %q and name the hook", err, tc.wantErr)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tc.wantCode {
				t.Fatalf("status error = %v, want code %d", se, tc.wantCode)
			}
		})
	}
}

// A hanging receiver costs the timeout per attempt, no more.
func TestCallTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewCaller()
	c.Backoff = time.Millisecond
	start := time.Now()
	err := c.Call(context.Background(), Hook{Name: "slow", URL: srv.URL, Timeout: 100 * time.Millisecond, Retries: 1}, Payload{})
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("err = %v", err)
	}
	// Two attempts of 100ms each; a generous bound, only to show it did not hang.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}
