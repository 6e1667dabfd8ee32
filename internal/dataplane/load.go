package dataplane

import (
	"net/http"
	"sort"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Stream is one kind of request the load generator sends.
type Stream struct {
	// Name tells the stream's results apart (it becomes the request's
	// path, so it must be a URL path segment).
	Name string
	// Header is sent with each request (a Host header sets the host).
	Header http.Header
}

// Result is one request's outcome.
type Result struct {
	Stream string
	At     time.Time
	Code   int
	// Version is the X-Version the answer carried ("" when none, as for
	// a proxy's own error).
	Version string
	// Pod is the X-Pod the answer carried: which pod (and so which copy)
	// answered.
	Pod   string
	Error string
}

// Load sends steady traffic through the proxy with vegeta's attacker and
// records which version answered each request.
type Load struct {
	attacker *vegeta.Attacker
	mu       sync.Mutex
	results  []Result
	done     chan struct{}
}

// StartLoad sends rate requests per second in total to baseURL, spread
// round-robin over the streams, until Stop.
func StartLoad(baseURL string, rate int, streams ...Stream) *Load {
	targets := make([]vegeta.Target, 0, len(streams))
	byURL := map[string]string{}
	for _, s := range streams {
		u := baseURL + "/" + s.Name
		targets = append(targets, vegeta.Target{Method: http.MethodGet, URL: u, Header: s.Header.Clone()})
		byURL[u] = s.Name
	}
	l := &Load{
		attacker: vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.MaxBody(256),
			vegeta.Workers(8), vegeta.MaxWorkers(64), vegeta.Redirects(vegeta.NoFollow)),
		done: make(chan struct{}),
	}
	results := l.attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, 0, "sluice")
	go func() {
		defer close(l.done)
		for r := range results {
			res := Result{Stream: byURL[r.URL], At: r.Timestamp, Code: int(r.Code), Error: r.Error}
			if r.Headers != nil {
				res.Version = r.Headers.Get(HeaderVersion)
				res.Pod = r.Headers.Get(HeaderPod)
			}
			l.mu.Lock()
			l.results = append(l.results, res)
			l.mu.Unlock()
		}
	}()
	return l
}

// Stop ends the attack and returns every result, in the order sent.
func (l *Load) Stop() []Result {
	l.attacker.Stop()
	<-l.done
	return l.Results()
}

// Results returns the results so far, in the order sent.
func (l *Load) Results() []Result {
	l.mu.Lock()
	out := append([]Result(nil), l.results...)
	l.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
