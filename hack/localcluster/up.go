package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// serviceCIDR is a loopback range. The apiserver accepts it for
	// Services, so every ClusterIP is an address a local process can bind:
	// a test can listen on ClusterIP:port and a real proxy that uses native
	// Service load-balancing (Traefik's nativeLB) reaches it. Pod IPs stay
	// outside loopback because EndpointSlices reject loopback addresses.
	serviceCIDR    = "127.2.0.0/16"
	firstServiceIP = "127.2.0.1"
	podCIDR        = "10.0.0.1/16"
)

// options are the supervisor's flags.
type options struct {
	dir       string
	apiPort   int
	etcdPort  int
	nodes     int
	nodePods  int
	installCR bool
	gatewayCh string
	ctrls     string
	profiling bool
	// audited are users (besides admin) with their own token and
	// kubeconfig-<user>, whose requests the apiserver's audit log records
	// at Metadata level (logs/audit.log): the peer benchmark attributes
	// apiserver load to each tool by them.
	audited []string
}

func runUp(args []string) int {
	var o options
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".local", "state folder: pki, etcd data, logs, kubeconfig")
	fs.IntVar(&o.apiPort, "api-port", 16443, "kube-apiserver secure port on 127.0.0.1")
	fs.IntVar(&o.etcdPort, "etcd-port", 12379, "etcd client port on 127.0.0.1 (peer port is this + 1)")
	fs.IntVar(&o.nodes, "nodes", 4, "number of kwok fake nodes")
	fs.IntVar(&o.nodePods, "node-pods", 3000, "pods each fake node can hold")
	fs.BoolVar(&o.installCR, "install-crds", true, "install the routers' CRDs once the apiserver is ready")
	fs.StringVar(&o.gatewayCh, "gateway-channel", "standard", "Gateway API CRD channel: standard or experimental")
	fs.StringVar(&o.ctrls, "controllers", "*", "kube-controller-manager's --controllers (the scale benchmark leaves out the EndpointSlice controllers)")
	fs.BoolVar(&o.profiling, "apiserver-profiling", false, "serve kube-apiserver's /debug/pprof (the scale benchmark profiles it)")
	fs.Func("audited-users", "comma-separated users given their own token (system:masters) and kubeconfig-<user>, whose requests the audit log (logs/audit.log) records", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				if !userName.MatchString(u) {
					return fmt.Errorf("user %q: use lowercase letters, digits and dashes", u)
				}
				o.audited = append(o.audited, u)
			}
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	o.dir = dir
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := up(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		return 1
	}
	return 0
}

// up starts every component in order, waits for each to be healthy, prepares
// the cluster (nodes, CRDs), marks it ready and then supervises until ctx ends.
func up(ctx context.Context, o options) error {
	for _, d := range []string{"logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(o.dir, d), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	_ = os.Remove(filepath.Join(o.dir, "ready"))
	if err := os.WriteFile(filepath.Join(o.dir, "localcluster.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	p := pki{dir: o.dir}
	token, err := p.ensure()
	if err != nil {
		return err
	}
	apiURL := fmt.Sprintf("https://127.0.0.1:%d", o.apiPort)
	kubeconfig := filepath.Join(o.dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, apiURL, p.caCert(), token); err != nil {
		return err
	}
	for _, u := range o.audited {
		t, err := p.userToken(u)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(filepath.Join(o.dir, "kubeconfig-"+u), apiURL, p.caCert(), t); err != nil {
			return err
		}
	}
	if len(o.audited) > 0 {
		if err := os.WriteFile(auditPolicy(o.dir), []byte(auditPolicyYAML(o.audited)), 0o644); err != nil {
			return fmt.Errorf("write audit policy: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(o.dir, "kwok.yaml"), []byte(kwokStages()), 0o644); err != nil {
		return fmt.Errorf("write kwok config: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", o.etcdPort)
	comps := []*component{
		{name: "etcd", args: []string{"etcd", "--data-dir", filepath.Join(o.dir, "etcd"),
			"--client-url", etcdURL, "--peer-url", fmt.Sprintf("http://127.0.0.1:%d", o.etcdPort+1)},
			ready: httpReady(etcdURL+"/health", nil, "")},
		{name: "kube-apiserver", args: apiserverArgs(o, p, etcdURL),
			ready: httpReady(apiURL+"/readyz", mustCAPool(p.caCert()), token)},
		{name: "kube-controller-manager", args: []string{"kube-controller-manager",
			"--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0",
			"--service-account-private-key-file", p.serviceAccountKey(), "--root-ca-file", p.caCert(),
			"--use-service-account-credentials=false", "--controllers=" + o.ctrls,
			"--kube-api-qps=500", "--kube-api-burst=1000",
			"--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
			"--concurrent-service-endpoint-syncs=20", "--concurrent-gc-syncs=40",
			"--node-monitor-grace-period=60s",
			// Autoscaler tests watch a real HPA move replicas; the default
			// 15 s sync would make each of its decisions take a quarter minute.
			"--horizontal-pod-autoscaler-sync-period=1s"}},
		{name: "kube-scheduler", args: []string{"kube-scheduler",
			"--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0"}},
		{name: "kwok", args: []string{"kwok", "--kubeconfig", kubeconfig, "--config", filepath.Join(o.dir, "kwok.yaml"),
			"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--cidr", podCIDR, "--node-ip", "10.255.0.1", "--node-lease-duration-seconds=40"}},
	}
	t0 := time.Now()
	step := func(what string) { fmt.Printf("%6.1fs %s\n", time.Since(t0).Seconds(), what) }
	sup := &supervisor{self: self, logDir: filepath.Join(o.dir, "logs")}
	defer sup.stopAll()
	for _, c := range comps {
		if err := sup.start(ctx, c); err != nil {
			return err
		}
		if c.ready != nil {
			if err := waitFor(ctx, c.name, 90*time.Second, c.ready); err != nil {
				return fmt.Errorf("%w (log: %s)", err, sup.logPath(c.name))
			}
		}
		step(c.name + " started")
	}
	prepCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := ensureNodes(prepCtx, kubeconfig, o.nodes, o.nodePods); err != nil {
		return err
	}
	step("nodes created")
	if o.installCR {
		if err := installCRDs(prepCtx, kubeconfig, o.gatewayCh); err != nil {
			return err
		}
		step("router CRDs installed")
	}
	if err := waitNodesReady(prepCtx, kubeconfig, o.nodes); err != nil {
		return err
	}
	step("nodes Ready")
	if err := os.WriteFile(filepath.Join(o.dir, "ready"), []byte(apiURL+"\n"), 0o644); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	fmt.Printf("localcluster ready: KUBECONFIG=%s (%s)\n", kubeconfig, apiURL)
	<-ctx.Done()
	fmt.Println("localcluster: stopping")
	_ = os.Remove(filepath.Join(o.dir, "ready"))
	return nil
}

func apiserverArgs(o options, p pki, etcdURL string) []string {
	args := []string{"kube-apiserver",
		"--etcd-servers", etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port", strconv.Itoa(o.apiPort),
		"--tls-cert-file", p.servingCert(), "--tls-private-key-file", p.servingKey(),
		"--client-ca-file", p.caCert(),
		"--token-auth-file", p.tokenFile(),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p.serviceAccountPub(),
		"--service-account-signing-key-file", p.serviceAccountKey(),
		"--service-cluster-ip-range", serviceCIDR,
		// The advertise address is loopback, which Endpoints reject; the
		// "kubernetes" Service's endpoints are not needed here.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=" + strconv.FormatBool(o.profiling),
		"--max-requests-inflight=2000", "--max-mutating-requests-inflight=1000",
	}
	if len(o.audited) > 0 {
		// Blocking mode: the batch mode drops events once its buffer fills.
		args = append(args, "--audit-policy-file", auditPolicy(o.dir),
			"--audit-log-path", filepath.Join(o.dir, "logs", "audit.log"), "--audit-log-format=json",
			"--audit-log-mode=blocking", "--audit-log-maxsize=2048", "--audit-log-maxbackup=1")
	}
	return args
}

var userName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func auditPolicy(dir string) string { return filepath.Join(dir, "audit-policy.yaml") }

// auditPolicyYAML records the audited users' requests at Metadata level
// (who, user agent, verb, resource, subresource, status; no bodies), once
// the response started, and nothing else.
func auditPolicyYAML(users []string) string {
	return fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: [%s]
- level: None
`, strings.Join(users, ", "))
}

// component is one supervised child process.
type component struct {
	name  string
	args  []string
	ready func(context.Context) error
}

// supervisor starts components as children of this process and restarts one
// that exits on its own; stopAll stops them in reverse order.
type supervisor struct {
	self   string
	logDir string

	mu      sync.Mutex
	running []*exec.Cmd
	exited  []chan struct{}
	closing bool
}

func (s *supervisor) logPath(name string) string { return filepath.Join(s.logDir, name+".log") }

func (s *supervisor) start(ctx context.Context, c *component) error {
	idx := -1
	var launch func() error
	launch = func() error {
		logf, err := os.OpenFile(s.logPath(c.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log for %s: %w", c.name, err)
		}
		cmd := exec.Command(s.self, c.args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		// Children die with the supervisor, however it ends.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start %s: %w", c.name, err)
		}
		done := make(chan struct{})
		s.mu.Lock()
		if idx < 0 {
			idx = len(s.running)
			s.running = append(s.running, cmd)
			s.exited = append(s.exited, done)
		} else {
			s.running[idx], s.exited[idx] = cmd, done
		}
		s.mu.Unlock()
		started := time.Now()
		go func() {
			err := cmd.Wait()
			logf.Close()
			close(done)
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || ctx.Err() != nil {
				return
			}
			fmt.Fprintf(os.Stderr, "localcluster: %s exited (%v); restarting\n", c.name, err)
			// Back off when a component crashes right after starting.
			if time.Since(started) < 10*time.Second {
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Second):
				}
			}
			if err := launch(); err != nil {
				fmt.Fprintln(os.Stderr, "localcluster:", err)
			}
		}()
		return nil
	}
	return launch()
}

func (s *supervisor) stopAll() {
	s.mu.Lock()
	s.closing = true
	cmds := append([]*exec.Cmd(nil), s.running...)
	exited := append([]chan struct{}(nil), s.exited...)
	s.mu.Unlock()
	for i := len(cmds) - 1; i >= 0; i-- {
		_ = cmds[i].Process.Signal(syscall.SIGTERM)
		select {
		case <-exited[i]:
		case <-time.After(15 * time.Second):
			_ = cmds[i].Process.Kill()
			<-exited[i]
		}
	}
}

func waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %w", what, timeout, last)
}

func httpReady(url string, roots *x509.CertPool, token string) func(context.Context) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status + ": " + string(body))
		}
		return nil
	}
}

func mustCAPool(path string) *x509.CertPool {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(path); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return pool
}

func writeKubeconfig(path, server, caFile, token string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("read ca: %w", err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: sluice-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: sluice-local
  context: {cluster: sluice-local, user: admin}
current-context: sluice-local
`, server, b64(ca), token)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
