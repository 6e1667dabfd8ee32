package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Prometheus is a real Prometheus server (Debian's package) on loopback.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}

	mu  sync.Mutex
	out bytes.Buffer
}

// StartPrometheus starts bin with the given scrape_configs (YAML list
// items, indented as under "scrape_configs:") and a global scrape and
// evaluation interval, storing its data in dir and listening on addr, and
// waits until it is ready.
func StartPrometheus(ctx context.Context, bin, dir, addr string, scrapeInterval time.Duration, scrapeConfigs string) (*Prometheus, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("prometheus not installed at %s (apt-get install prometheus, or set $PROMETHEUS): %w", bin, err)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n%s\n",
		scrapeInterval, scrapeInterval, scrapeConfigs)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	p := &Prometheus{URL: "http://" + addr}
	p.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.enable-lifecycle",
	)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := waitOK(ctx, p.URL+"/-/ready", 30*time.Second, p.exited); err != nil {
		p.Stop()
		return nil, fmt.Errorf("prometheus: %w: %s", err, p.Log())
	}
	go func() {
		select {
		case <-ctx.Done():
			p.Stop()
		case <-p.exited:
		}
	}()
	return p, nil
}

// Write collects the server's output.
func (p *Prometheus) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Log is the server's output so far.
func (p *Prometheus) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stop stops the server: SIGTERM, then SIGKILL after 10 s (idempotent).
func (p *Prometheus) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitOK polls url until it answers 200, the process exits (exited
// closes) or timeout passes.
func waitOK(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before %s answered", url)
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %s", url, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
