package startup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

func TestProbes(t *testing.T) {
	waiting := errors.New("waiting for the apiserver to serve Widget.v1.example.com")
	var ready atomic.Bool
	p, err := ServeProbes("127.0.0.1:0",
		map[string]healthz.Checker{"ping": healthz.Ping},
		map[string]healthz.Checker{"ping": healthz.Ping, "kinds": func(*http.Request) error {
			if ready.Load() {
				return nil
			}
			return waiting
		}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr().String()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, "ok"},
		{"/healthz/ping", 200, "ok"},
		{"/readyz", 500, "[-]kinds failed"},
		{"/readyz/kinds", 500, waiting.Error()},
		{"/readyz/ping", 200, "ok"},
	} {
		if code, body := get(c.path); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", c.path, code, body, c.code, c.body)
		}
	}
	ready.Store(true)
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("GET /readyz once ready: %d %q", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + p.Addr().String() + "/healthz"); err == nil {
		t.Error("probes still served after Stop")
	}
}

func TestProbesOff(t *testing.T) {
	for _, addr := range []string{"", "0"} {
		p, err := ServeProbes(addr, nil, nil)
		if err != nil || p.Addr() != nil {
			t.Errorf("ServeProbes(%q): %v, %v; want no server", addr, p.Addr(), err)
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
}
