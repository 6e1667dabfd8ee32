package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TraefikOptions configure a local Traefik against the local control
// plane.
type TraefikOptions struct {
	// Bin is the traefik binary (bin/traefik, built by hack/traefik.sh).
	Bin string
	// APIServer, Token and CAFile reach the apiserver.
	APIServer, Token, CAFile string
	// Namespaces Traefik's providers watch (all when empty).
	Namespaces []string
	// WebAddr is the web entry point ("127.0.0.1:port"); AdminAddr serves
	// /ping and /metrics.
	WebAddr, AdminAddr string
	// Gateway enables the kubernetesgateway provider too.
	Gateway bool
}

// Traefik is a running Traefik process.
type Traefik struct {
	cmd *exec.Cmd
	// WebURL is the web entry point; MetricsURL Traefik's Prometheus
	// endpoint.
	WebURL, MetricsURL string

	mu  sync.Mutex
	out bytes.Buffer
}

// StartTraefik starts Traefik with the kubernetescrd provider (and the
// kubernetesgateway one, if asked), both sending to Services' ClusterIPs
// (nativeLBByDefault), with Prometheus metrics labelled by service, and
// waits until it answers /ping. It is stopped when ctx ends or by Stop.
func StartTraefik(ctx context.Context, o TraefikOptions) (*Traefik, error) {
	k8s := func(provider string) []string {
		p := "--providers." + provider
		args := []string{p + "=true", p + ".endpoint=" + o.APIServer, p + ".token=" + o.Token,
			p + ".certAuthFilePath=" + o.CAFile, p + ".nativeLBByDefault=true"}
		if len(o.Namespaces) > 0 {
			args = append(args, p+".namespaces="+strings.Join(o.Namespaces, ","))
		}
		return args
	}
	args := []string{
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
		"--log.level=INFO", "--log.noColor=true",
		"--entryPoints.web.address=" + o.WebAddr,
		"--entryPoints.admin.address=" + o.AdminAddr,
		"--ping=true", "--ping.entryPoint=admin",
		"--metrics.prometheus=true", "--metrics.prometheus.entryPoint=admin",
		"--metrics.prometheus.addServicesLabels=true",
	}
	args = append(args, k8s("kubernetesCRD")...)
	if o.Gateway {
		args = append(args, k8s("kubernetesGateway")...)
	}
	t := &Traefik{WebURL: "http://" + o.WebAddr, MetricsURL: "http://" + o.AdminAddr + "/metrics"}
	t.cmd = exec.CommandContext(ctx, o.Bin, args...)
	t.cmd.Stdout, t.cmd.Stderr = t, t
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start traefik %s: %w", o.Bin, err)
	}
	done := make(chan struct{})
	go func() { _ = t.cmd.Wait(); close(done) }()
	if err := waitOK(ctx, "http://"+o.AdminAddr+"/ping", 60*time.Second, done); err != nil {
		t.Stop()
		return nil, fmt.Errorf("traefik: %w: %s", err, t.Log())
	}
	return t, nil
}

// Write collects Traefik's output.
func (t *Traefik) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.Write(b)
}

// Log is Traefik's output so far.
func (t *Traefik) Log() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.String()
}

// Stop kills Traefik.
func (t *Traefik) Stop() {
	if t.cmd != nil && t.cmd.Process != nil {
		_ = t.cmd.Process.Kill()
	}
}
