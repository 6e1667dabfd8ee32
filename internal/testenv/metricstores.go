package testenv

// Real metric stores for provider tests: VictoriaMetrics, InfluxDB 1.x and
// Graphite (graphite-web), Debian's packages (hack/deps.sh installs them),
// each a child process on loopback with its data in the test's temporary
// folder, started per test and killed when the test ends.
//
// What the packaged versions do (Debian bookworm, checked by
// metricstores_test.go):
//
//   - Graphite (graphite-web 1.1.8): relative times need a unit of at least
//     "s" or "min": from=-60s, -60sec, -10seconds, -1min, -2minutes, -5min and
//     -1h are accepted, but -1m ("m" is neither min nor mon) and a bare -60
//     answer 400 "Invalid parameters (Invalid offset unit 'm')". The range
//     is aligned to the 10 s step: from is rounded up to the next step
//     (from=-60s gives 6 points) and the last bucket is the current step,
//     so it is null until a point is written in it; buckets with no point
//     are null. A target with no whisper file answers 200 [].
//     Of several points written in one step the newest timestamp's wins.
//   - VictoriaMetrics 1.79: /api/v1/import/prometheus answers 204 before the
//     rows are searchable (they are buffered and flushed about once a
//     second; polling a new series before that could keep it invisible for
//     ~9 s). /internal/force_flush exists and makes them searchable within
//     ~100 ms (export). Even with -search.latencyOffset=0s, /api/v1/query
//     without nocache=1 evaluates at now-1s at the latest, so a sample is in
//     instant-query answers only a second after its timestamp.
//     VictoriaMetrics.Import waits for both.
//   - InfluxDB 1.6.7: a write (204) is queryable at once. With auth on, a
//     wrong password or unknown user answers 401 {"error":"authorization
//     failed"}, no credentials 401 {"error":"unable to parse authentication
//     credentials"}. A query that does not parse answers 400
//     {"error":"error parsing query: found SELEC, expected SELECT, ... at
//     line 1, char 1"}; an unknown database answers 200
//     {"results":[{"statement_id":0,"error":"database not found: x"}]}; an
//     unknown measurement 200 {"results":[{"statement_id":0}]} (no series).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MetricStoreStartTimeout bounds how long a metric store may take to answer
// its readiness probe (a loaded CI machine is slow).
const MetricStoreStartTimeout = 60 * time.Second

// storePollInterval is how often the helpers probe a store.
const storePollInterval = 150 * time.Millisecond

// process is a metric store's child process and its combined output.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	out    lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail is the last 8 KiB of the process's output.
func (p *process) tail() string {
	s := p.out.String()
	if len(s) > 8<<10 {
		s = "...\n" + s[len(s)-8<<10:]
	}
	return s
}

// requireFile fails the test when a store's executable (or file) is
// missing, naming the Debian package that brings it.
func requireFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not installed (%v): run `make deps` (hack/deps.sh installs the Debian package %s)", path, err, pkg)
	}
}

// startProcess starts bin with args and extra environment, its stdout and
// stderr collected, and kills it (then waits for it) when the test ends,
// logging its output (the last 8 KiB) if the test failed. Call t.TempDir for the store's
// data before, so the folder is removed after the process is gone.
func startProcess(t testing.TB, name, bin string, args, env []string) *process {
	t.Helper()
	p := &process{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.tail())
		}
	})
	return p
}

// waitReady polls ready until it returns nil, failing the test with the
// last error and the process's output when the process exits or
// MetricStoreStartTimeout passes. It logs how long the start took.
func waitReady(t testing.TB, p *process, started time.Time, ready func(ctx context.Context) error) {
	t.Helper()
	deadline := started.Add(MetricStoreStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			t.Logf("%s ready in %s", p.name, time.Since(started).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v", p.name, MetricStoreStartTimeout, err)
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready (%v; last probe: %v)", p.name, p.cmd.ProcessState, err)
		case <-time.After(storePollInterval):
		}
	}
}

// pollStore runs cond every storePollInterval until it returns nil, the
// process exits or timeout passes, and then fails the test.
func pollStore(t testing.TB, p *process, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: not done after %s: %v", p.name, what, timeout, err)
		}
		select {
		case <-p.exited:
			t.Fatalf("%s: %s: the server exited (%v)", p.name, what, p.cmd.ProcessState)
		case <-time.After(storePollInterval):
		}
	}
}

// httpDo sends a request and returns the status and body.
func httpDo(ctx context.Context, method, u, user, password, contentType string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func skipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test: starts a real %s (run without -short)", what)
	}
}

// ---------------------------------------------------------------------------
// VictoriaMetrics

// VictoriaMetrics is a real single-node VictoriaMetrics (Debian's package)
// on loopback, with one day of retention and no response cache.
type VictoriaMetrics struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL  string
	proc *process
}

// VictoriaMetricsBinary is the executable StartVictoriaMetrics runs:
// $VICTORIA_METRICS or the Debian package's /usr/bin/victoria-metrics.
func VictoriaMetricsBinary() string {
	if p := os.Getenv("VICTORIA_METRICS"); p != "" {
		return p
	}
	return "/usr/bin/victoria-metrics"
}

// StartVictoriaMetrics starts VictoriaMetrics with its data in a temporary
// folder, waits until /health answers OK and kills it when the test ends.
func StartVictoriaMetrics(t testing.TB) *VictoriaMetrics {
	t.Helper()
	skipShort(t, "VictoriaMetrics")
	bin := VictoriaMetricsBinary()
	requireFile(t, bin, "victoria-metrics")
	dir := t.TempDir()
	addr := FreeAddr(t)
	started := time.Now()
	p := startProcess(t, "victoria-metrics", bin, []string{
		"-storageDataPath=" + dir,
		"-httpListenAddr=" + addr,
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-retentionPeriod=1d",
	}, nil)
	vm := &VictoriaMetrics{URL: "http://" + addr, proc: p}
	waitReady(t, p, started, func(ctx context.Context) error {
		code, body, err := httpDo(ctx, http.MethodGet, vm.URL+"/health", "", "", "", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK || strings.TrimSpace(string(body)) != "OK" {
			return fmt.Errorf("/health: %d %q", code, body)
		}
		return nil
	})
	return vm
}

// Log is the server's output so far.
func (vm *VictoriaMetrics) Log() string { return vm.proc.out.String() }

// Import posts Prometheus exposition text to /api/v1/import/prometheus and
// waits until it is queryable: every sample in /api/v1/export, and the
// newest one old enough for /api/v1/query at the current time (which
// VictoriaMetrics evaluates at now-1s). Every sample needs a timestamp, in
// milliseconds; one in the future makes Import wait until it has passed.
func (vm *VictoriaMetrics) Import(t testing.TB, text string) {
	t.Helper()
	samples, err := parseExposition(text)
	if err != nil {
		t.Fatalf("victoria-metrics import: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, body, err := httpDo(ctx, http.MethodPost, vm.URL+"/api/v1/import/prometheus", "", "", "text/plain", strings.NewReader(text))
	if err != nil || code/100 != 2 {
		t.Fatalf("victoria-metrics import: %d %s %v", code, body, err)
	}
	// Flush the buffered rows now rather than within the next second.
	code, body, err = httpDo(ctx, http.MethodGet, vm.URL+"/internal/force_flush", "", "", "", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("victoria-metrics force_flush: %d %s %v", code, body, err)
	}
	bySeries := map[string][]int64{}
	var order []string
	newest := int64(math.MinInt64)
	for _, s := range samples {
		if _, ok := bySeries[s.series]; !ok {
			order = append(order, s.series)
		}
		bySeries[s.series] = append(bySeries[s.series], s.ts)
		newest = max(newest, s.ts)
	}
	pollStore(t, vm.proc, MetricStoreStartTimeout, "imported samples queryable", func(ctx context.Context) error {
		for _, series := range order {
			if err := vm.exported(ctx, series, bySeries[series]); err != nil {
				return err
			}
		}
		if now := time.Now().UnixMilli(); len(samples) > 0 && now < newest+1000 {
			return fmt.Errorf("newest sample (%d) not yet a second old (now %d)", newest, now)
		}
		return nil
	})
}

// exported checks that /api/v1/export has every timestamp of the series.
func (vm *VictoriaMetrics) exported(ctx context.Context, series string, timestamps []int64) error {
	lo, hi := timestamps[0], timestamps[0]
	for _, ts := range timestamps {
		lo, hi = min(lo, ts), max(hi, ts)
	}
	q := url.Values{
		"match[]": {series},
		// One millisecond wider each side: the seconds are parsed as a float.
		"start": {strconv.FormatFloat(float64(lo-1)/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(hi+1)/1000, 'f', 3, 64)},
	}
	code, body, err := httpDo(ctx, http.MethodGet, vm.URL+"/api/v1/export?"+q.Encode(), "", "", "", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("export %s: %d %s", series, code, body)
	}
	seen := map[int64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Timestamps []int64 `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("export %s: %w: %s", series, err, sc.Bytes())
		}
		for _, ts := range line.Timestamps {
			seen[ts] = true
		}
	}
	for _, ts := range timestamps {
		if !seen[ts] {
			return fmt.Errorf("export %s: no sample at %d yet", series, ts)
		}
	}
	return nil
}

// expoSample is one sample line of Prometheus exposition text.
type expoSample struct {
	series string // name{labels} as written, a valid series selector
	value  float64
	ts     int64 // milliseconds
}

// parseExposition reads the sample lines of exposition text (comments and
// blank lines skipped), each of which must carry a timestamp.
func parseExposition(text string) ([]expoSample, error) {
	var out []expoSample
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 {
			return nil, fmt.Errorf("line %d: %q: no value", n+1, line)
		}
		if line[end] == '{' {
			closing, err := labelsEnd(line, end)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q: %w", n+1, line, err)
			}
			end = closing + 1
		}
		series := line[:end]
		fields := strings.Fields(line[end:])
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: %q: want `series value timestamp_ms`", n+1, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value: %w", n+1, err)
		}
		ts, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: timestamp (milliseconds): %w", n+1, err)
		}
		out = append(out, expoSample{series: series, value: v, ts: ts})
	}
	return out, nil
}

// labelsEnd returns the index of the '}' closing the label set opened at
// line[open], skipping quoted values.
func labelsEnd(line string, open int) (int, error) {
	quoted := false
	for i := open + 1; i < len(line); i++ {
		switch c := line[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i, nil
		}
	}
	return 0, fmt.Errorf("unterminated label set")
}

// ---------------------------------------------------------------------------
// InfluxDB 1.x

// InfluxDB is a real InfluxDB 1.x server (Debian's package, 1.6.7) on
// loopback.
type InfluxDB struct {
	// URL is the HTTP API's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Username and Password are the admin user's, when started with Auth;
	// empty otherwise.
	Username, Password string
	proc               *process
}

// InfluxOptions configures StartInfluxDB.
type InfluxOptions struct {
	// Auth turns on HTTP authentication, with an admin user (InfluxDB's
	// Username and Password) created at start.
	Auth bool
}

// InfluxDBinary is the executable StartInfluxDB runs: $INFLUXD or the
// Debian package's /usr/bin/influxd.
func InfluxDBinary() string {
	if p := os.Getenv("INFLUXD"); p != "" {
		return p
	}
	return "/usr/bin/influxd"
}

// StartInfluxDB starts influxd with its meta, data and WAL in a temporary
// folder (configured by environment, `-config /dev/null`), waits until
// /ping answers 204, creates the admin user when o.Auth, and kills it when
// the test ends.
func StartInfluxDB(t testing.TB, o InfluxOptions) *InfluxDB {
	t.Helper()
	skipShort(t, "InfluxDB")
	bin := InfluxDBinary()
	requireFile(t, bin, "influxdb")
	dir := t.TempDir()
	addr, rpcAddr := FreeAddr(t), FreeAddr(t)
	env := []string{
		"INFLUXDB_META_DIR=" + filepath.Join(dir, "meta"),
		"INFLUXDB_DATA_DIR=" + filepath.Join(dir, "data"),
		"INFLUXDB_DATA_WAL_DIR=" + filepath.Join(dir, "wal"),
		"INFLUXDB_HTTP_BIND_ADDRESS=" + addr,
		"INFLUXDB_BIND_ADDRESS=" + rpcAddr,
		"INFLUXDB_REPORTING_DISABLED=true",
		// No _internal database written every 10 s.
		"INFLUXDB_MONITOR_STORE_ENABLED=false",
	}
	if o.Auth {
		env = append(env, "INFLUXDB_HTTP_AUTH_ENABLED=true")
	}
	started := time.Now()
	p := startProcess(t, "influxd", bin, []string{"run", "-config", "/dev/null"}, env)
	db := &InfluxDB{URL: "http://" + addr, proc: p}
	waitReady(t, p, started, func(ctx context.Context) error {
		code, body, err := httpDo(ctx, http.MethodGet, db.URL+"/ping", "", "", "", nil)
		if err != nil {
			return err
		}
		if code != http.StatusNoContent {
			return fmt.Errorf("/ping: %d %s", code, body)
		}
		return nil
	})
	if o.Auth {
		pw := make([]byte, 12)
		_, _ = rand.Read(pw)
		password := hex.EncodeToString(pw)
		// The first admin may be created without credentials.
		db.query(t, "", fmt.Sprintf("CREATE USER admin WITH PASSWORD '%s' WITH ALL PRIVILEGES", password))
		db.Username, db.Password = "admin", password
	}
	return db
}

// Log is the server's output so far.
func (db *InfluxDB) Log() string { return db.proc.out.String() }

// query runs an InfluxQL statement (POST /query) that must succeed.
func (db *InfluxDB) query(t testing.TB, database, q string) {
	t.Helper()
	form := url.Values{"q": {q}}
	if database != "" {
		form.Set("db", database)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, body, err := httpDo(ctx, http.MethodPost, db.URL+"/query", db.Username, db.Password,
		"application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("influxd %q: %v", q, err)
	}
	var res struct {
		Error   string `json:"error"`
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Error != "" || len(res.Results) == 0 || res.Results[0].Error != "" {
		t.Fatalf("influxd %q: %d %s", q, code, body)
	}
}

// CreateDatabase creates a database (as the admin user with Auth).
func (db *InfluxDB) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	db.query(t, "", "CREATE DATABASE "+influxIdent(name))
}

// Write writes line protocol to database db with second precision: the
// lines' timestamps are Unix seconds. The points are queryable when Write
// returns.
func (db *InfluxDB) Write(t testing.TB, database, lineProtocol string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := db.URL + "/write?" + url.Values{"db": {database}, "precision": {"s"}}.Encode()
	code, body, err := httpDo(ctx, http.MethodPost, u, db.Username, db.Password, "text/plain", strings.NewReader(lineProtocol))
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("influxd write to %s: %d %s %v", database, code, body, err)
	}
}

// influxIdent double-quotes an InfluxQL identifier.
func influxIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// ---------------------------------------------------------------------------
// Graphite

// GraphiteStep is the resolution of the whisper files Graphite.Write
// creates (retention 10s:1d): graphite-web aligns render answers to it.
const GraphiteStep = 10 * time.Second

// Graphite is a real graphite-web (Debian's package, 1.1.8) served by
// Django's development server on loopback, reading whisper files that
// Write puts in its WhisperDir (no carbon daemon).
type Graphite struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// WhisperDir is where metric a.b.c is a/b/c.wsp.
	WhisperDir string
	proc       *process
}

// GraphitePoint is one point Graphite.Write stores.
type GraphitePoint struct {
	Time  time.Time
	Value float64
}

// graphitePython is Debian's interpreter, which has the graphite and
// whisper modules (a python3 earlier on PATH, e.g. pyenv's, may not).
const graphitePython = "/usr/bin/python3"

// graphiteManage is graphite-web's manage.py (#! /usr/bin/python3).
const graphiteManage = "/usr/bin/graphite-manage"

// StartGraphite writes a settings module into a temporary folder (storage,
// whisper files, logs, index and sqlite database there, no carbonlink, UTC,
// no cache), runs the Django migrations, starts `runserver --noreload`,
// waits until /render answers 200 and kills it when the test ends.
func StartGraphite(t testing.TB) *Graphite {
	t.Helper()
	skipShort(t, "Graphite")
	requireFile(t, graphiteManage, "graphite-web")
	requireFile(t, graphitePython, "python3")
	if out, err := exec.Command(graphitePython, "-c", "import graphite, whisper").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import graphite and whisper (%v: %s): run `make deps` (hack/deps.sh installs the Debian packages graphite-web and python3-whisper)", graphitePython, err, out)
	}
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	g := &Graphite{WhisperDir: filepath.Join(storage, "whisper")}
	logDir := filepath.Join(storage, "log")
	// graphite/settings.py reads whisper files only from a WHISPER_DIR that
	// exists when it loads.
	for _, d := range []string{g.WhisperDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// graphite/settings.py imports $GRAPHITE_SETTINGS_MODULE (default
	// local_settings) from the path and takes its globals.
	settings := strings.Join([]string{
		"SECRET_KEY = " + strconv.Quote("sluice-test"),
		"STORAGE_DIR = " + strconv.Quote(storage),
		"WHISPER_DIR = " + strconv.Quote(g.WhisperDir),
		"LOG_DIR = " + strconv.Quote(logDir),
		"INDEX_FILE = " + strconv.Quote(filepath.Join(storage, "index")),
		"CONF_DIR = " + strconv.Quote(dir),
		"CARBONLINK_HOSTS = []",
		"CLUSTER_SERVERS = []",
		"TIME_ZONE = 'UTC'",
		"DEFAULT_XFILES_FACTOR = 0",
		"CACHES = {'default': {'BACKEND': 'django.core.cache.backends.dummy.DummyCache'}}",
		"DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': " + strconv.Quote(filepath.Join(storage, "graphite.db")) + "}}",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "sluice_graphite_settings.py"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PYTHONPATH=" + dir,
		"PYTHONDONTWRITEBYTECODE=1",
		"GRAPHITE_SETTINGS_MODULE=sluice_graphite_settings",
		"DJANGO_SETTINGS_MODULE=graphite.settings",
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*MetricStoreStartTimeout)
	defer cancel()
	migrate := exec.CommandContext(ctx, graphiteManage, "migrate", "--run-syncdb", "--no-input")
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("graphite-manage migrate: %v\n%s", err, out)
	}
	addr := FreeAddr(t)
	g.URL = "http://" + addr
	g.proc = startProcess(t, "graphite-web", graphiteManage, []string{"runserver", "--noreload", addr}, env)
	waitReady(t, g.proc, started, func(ctx context.Context) error {
		code, body, err := httpDo(ctx, http.MethodGet, g.URL+"/render?target=x&format=json", "", "", "", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/render: %d %.300s", code, body)
		}
		return nil
	})
	return g
}

// Log is the server's output so far.
func (g *Graphite) Log() string { return g.proc.out.String() }

// graphiteWriteScript creates the whisper file argv[1] if missing
// (retention 10s:1d, average, xFilesFactor 0) and stores the
// [[unix_seconds, value], ...] points read from stdin.
const graphiteWriteScript = `import json, os, sys, whisper
path = sys.argv[1]
points = [(int(p[0]), float(p[1])) for p in json.load(sys.stdin)]
if not os.path.exists(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    whisper.create(path, [(10, 8640)], xFilesFactor=0, aggregationMethod="average")
whisper.update_many(path, points)
`

// Write stores points of metric (a dotted path, a.b.c) in its whisper file
// (WhisperDir/a/b/c.wsp, created with retention 10s:1d), readable by the
// next render. Each point lands in the GraphiteStep bucket holding its
// time; points older than a day are dropped; of several points in one
// bucket the newest timestamp's wins, and a later Write overwrites.
func (g *Graphite) Write(t testing.TB, metric string, points []GraphitePoint) {
	t.Helper()
	parts := strings.Split(metric, ".")
	for _, p := range parts {
		if p == "" || p == ".." || strings.ContainsAny(p, `/\`) {
			t.Fatalf("graphite write: bad metric path %q", metric)
		}
	}
	path := filepath.Join(g.WhisperDir, filepath.Join(parts...)+".wsp")
	data := make([][2]float64, 0, len(points))
	for _, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			t.Fatalf("graphite write %s: value %v not storable", metric, p.Value)
		}
		data = append(data, [2]float64{float64(p.Time.Unix()), p.Value})
	}
	in, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), MetricStoreStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, graphitePython, "-c", graphiteWriteScript, path)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("graphite write %s: %v\n%s", metric, err, out)
	}
}
