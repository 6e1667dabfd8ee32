package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func getJSON(t *testing.T, u, user, password string, wantCode int, into any) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, body, err := httpDo(ctx, http.MethodGet, u, user, password, "", nil)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if code != wantCode {
		t.Fatalf("GET %s: %d %s, want %d", u, code, body, wantCode)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, body)
		}
	}
	return body
}

func TestVictoriaMetrics(t *testing.T) {
	vm := StartVictoriaMetrics(t)
	now := time.Now().UnixMilli()
	vm.Import(t, fmt.Sprintf(`# TYPE http_requests_total counter
http_requests_total{code="200",route="/a b}"} 10 %d
http_requests_total{code="200",route="/a b}"} 25 %d
http_requests_total{code="500",route="/a b}"} 3 %d
latency_seconds 0.25 %d
`, now-60_000, now, now, now))

	// An instant query at the current time sees the newest samples as soon
	// as Import returns.
	q := func(promql string) map[string]string {
		var res struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		getJSON(t, vm.URL+"/api/v1/query?"+url.Values{"query": {promql}}.Encode(), "", "", http.StatusOK, &res)
		out := map[string]string{}
		for _, r := range res.Data.Result {
			out[r.Metric["code"]] = r.Value[1].(string)
		}
		return out
	}
	if got := q(`http_requests_total`); got["200"] != "25" || got["500"] != "3" || len(got) != 2 {
		t.Errorf("http_requests_total = %v, want 200:25 500:3", got)
	}
	if got := q(`latency_seconds`); got[""] != "0.25" {
		t.Errorf("latency_seconds = %v, want 0.25", got)
	}
	if got := q(`count_over_time(http_requests_total{code="200"}[5m])`); got["200"] != "2" {
		t.Errorf("count_over_time = %v, want 2 samples", got)
	}
	// A second import into existing series is visible too.
	vm.Import(t, fmt.Sprintf("latency_seconds 0.5 %d\n", time.Now().UnixMilli()))
	if got := q(`latency_seconds`); got[""] != "0.5" {
		t.Errorf("latency_seconds after the second import = %v, want 0.5", got)
	}
}

func TestParseExposition(t *testing.T) {
	got, err := parseExposition("# HELP x y\n\nfoo{a=\"x}\\\"y\",b=\"\"} 1.5 1000\nbar NaN 2000\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].series != `foo{a="x}\"y",b=""}` || got[0].value != 1.5 || got[0].ts != 1000 || got[1].series != "bar" || got[1].ts != 2000 {
		t.Errorf("got %+v", got)
	}
	if _, err := parseExposition("foo 1\n"); err == nil {
		t.Error("a sample without a timestamp parsed")
	}
}

type influxResult struct {
	Error   string `json:"error"`
	Results []struct {
		Error  string `json:"error"`
		Series []struct {
			Name    string            `json:"name"`
			Tags    map[string]string `json:"tags"`
			Columns []string          `json:"columns"`
			Values  [][]any           `json:"values"`
		} `json:"series"`
	} `json:"results"`
}

func influxQuery(db *InfluxDB, database, q string) string {
	return db.URL + "/query?" + url.Values{"db": {database}, "q": {q}, "epoch": {"s"}}.Encode()
}

func TestInfluxDB(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", auth), func(t *testing.T) {
			db := StartInfluxDB(t, InfluxOptions{Auth: auth})
			if auth != (db.Username != "") {
				t.Fatalf("Username %q with Auth %v", db.Username, auth)
			}
			db.CreateDatabase(t, "app")
			now := time.Now().Unix()
			db.Write(t, "app", fmt.Sprintf("requests,code=200 value=10 %d\nrequests,code=500 value=2 %d\nrequests,code=200 value=30 %d\n", now-20, now-20, now-10))

			var res influxResult
			getJSON(t, influxQuery(db, "app", `SELECT sum("value") FROM "requests" WHERE time > now() - 5m GROUP BY "code"`), db.Username, db.Password, http.StatusOK, &res)
			if len(res.Results) != 1 || len(res.Results[0].Series) != 2 {
				t.Fatalf("got %+v, want two series", res)
			}
			got := map[string]any{}
			for _, s := range res.Results[0].Series {
				got[s.Tags["code"]] = s.Values[0][1]
			}
			if got["200"] != 40.0 || got["500"] != 2.0 {
				t.Errorf("sums by code = %+v, want 40 and 2", res.Results[0].Series)
			}

			// A query that does not parse: 400 with the parser's error.
			res = influxResult{}
			body := getJSON(t, influxQuery(db, "app", "SELEC bad"), db.Username, db.Password, http.StatusBadRequest, &res)
			if !strings.HasPrefix(res.Error, "error parsing query: found SELEC") {
				t.Errorf("bad query: %s", body)
			}
			// An unknown database: 200 with the statement's error.
			res = influxResult{}
			getJSON(t, influxQuery(db, "nope", `SELECT * FROM "requests"`), db.Username, db.Password, http.StatusOK, &res)
			if len(res.Results) != 1 || res.Results[0].Error != "database not found: nope" {
				t.Errorf("unknown database: %+v", res)
			}
			if !auth {
				return
			}
			res = influxResult{}
			body = getJSON(t, influxQuery(db, "app", `SELECT * FROM "requests"`), db.Username, "wrong", http.StatusUnauthorized, &res)
			if res.Error != "authorization failed" {
				t.Errorf("wrong password: %s", body)
			}
			res = influxResult{}
			body = getJSON(t, influxQuery(db, "app", `SELECT * FROM "requests"`), "", "", http.StatusUnauthorized, &res)
			if res.Error != "unable to parse authentication credentials" {
				t.Errorf("no credentials: %s", body)
			}
		})
	}
}

func TestGraphite(t *testing.T) {
	g := StartGraphite(t)
	step := int64(GraphiteStep / time.Second)
	now := time.Now()
	// Six points, 10 s apart, the newest two steps ago: the current
	// bucket and the one before stay empty.
	var points []GraphitePoint
	for i := range 6 {
		points = append(points, GraphitePoint{Time: now.Add(time.Duration(i-7) * GraphiteStep), Value: float64(i + 1)})
	}
	g.Write(t, "app.requests.rate", points)

	render := func(target, from string, wantCode int) [][2]*float64 {
		var res []struct {
			Target     string        `json:"target"`
			Datapoints [][2]*float64 `json:"datapoints"`
		}
		u := g.URL + "/render?" + url.Values{"target": {target}, "from": {from}, "format": {"json"}}.Encode()
		if wantCode != http.StatusOK {
			getJSON(t, u, "", "", wantCode, nil)
			return nil
		}
		getJSON(t, u, "", "", http.StatusOK, &res)
		if len(res) != 1 {
			t.Fatalf("render %s from %s: %d series", target, from, len(res))
		}
		return res[0].Datapoints
	}
	byTime := func(dps [][2]*float64) map[int64]*float64 {
		m := map[int64]*float64{}
		for _, dp := range dps {
			m[int64(*dp[1])] = dp[0]
		}
		return m
	}
	nowBucket := now.Unix() - now.Unix()%step
	dps := render("app.requests.rate", "-5min", http.StatusOK)
	got := byTime(dps)
	for _, p := range points {
		bucket := p.Time.Unix() - p.Time.Unix()%step
		if v := got[bucket]; v == nil || *v != p.Value {
			t.Errorf("bucket %d = %v, want %v", bucket, v, p.Value)
		}
	}
	// The last bucket is the current step (at render time), null: no
	// point was written in it.
	if last := dps[len(dps)-1]; last[0] != nil || int64(*last[1]) < nowBucket {
		t.Errorf("last bucket = [%v %v], want null at %d or later", last[0], *last[1], nowBucket)
	}
	// Relative times: -60s, -1min and the like; not -1m.
	for _, from := range []string{"-60s", "-60sec", "-1min", "-1minutes"} {
		if n := len(render("app.requests.rate", from, http.StatusOK)); n != 6 {
			t.Errorf("from=%s: %d points, want 6", from, n)
		}
	}
	render("app.requests.rate", "-1m", http.StatusBadRequest)
	// A second write into the same file is read by the next render.
	g.Write(t, "app.requests.rate", []GraphitePoint{{Time: now, Value: 42}})
	if v := byTime(render("app.requests.rate", "-60s", http.StatusOK))[nowBucket]; v == nil || *v != 42 {
		t.Errorf("bucket %d after a write = %v, want 42", nowBucket, v)
	}
	// A metric without a file: 200, no series.
	var none []any
	getJSON(t, g.URL+"/render?target=no.such.metric&format=json", "", "", http.StatusOK, &none)
	if len(none) != 0 {
		t.Errorf("unknown metric: %v", none)
	}
}
