package analysis

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	v := Vars{Namespace: "shop", Name: "web", Target: "web", Service: "web-svc", Interval: 90 * time.Second,
		Variables: map[string]string{"route": "/checkout"}}
	cases := []struct{ in, want, err string }{
		{`sum(rate(x{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-z]+"}[{{ interval }}]))`,
			`sum(rate(x{namespace="shop",pod=~"web-[0-9a-z]+"}[1m30s]))`, ""},
		{`{{ name }}/{{ service }} {{ .route }}`, `web/web-svc /checkout`, ""},
		{`{{ .missing }}`, "", `map has no entry for key "missing"`},
		{`{{ broken`, "", "parse query template"},
	}
	for _, c := range cases {
		got, err := Render(c.in, v)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Render(%q) error %v, want it to mention %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Render(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour + time.Second: "1h1s",
		26 * time.Hour: "1d2h", 0: "1s", 1500 * time.Millisecond: "2s",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

// Prometheus's documented answers, served as they are, read through the
// client: one value, or an error that says why there is none.
func TestPrometheusAnswers(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   float64
		err    string
		noVals bool
	}{
		{200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"99.5"]}]}}`, 99.5, "", false},
		{200, `{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}`, 3, "", false},
		{200, `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, "no values", true},
		{200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`, 0, "no values", true},
		{200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}`, 0, "2 series; aggregate", false},
		{200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, "returned a matrix", false},
		{400, `{"status":"error","errorType":"bad_data","error":"parse error"}`, 0, "bad_data: parse error", false},
		{422, `{"status":"error","errorType":"execution","error":"query processing would load too many samples"}`, 0, "execution: query processing would load too many samples", false},
		{503, `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`, 0, "TSDB not ready", false},
		{200, `<html>gateway timeout</html>`, 0, "<html>gateway timeout", false},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v1/query" || r.FormValue("query") != "q" {
				http.Error(w, "unexpected request "+r.URL.String(), http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			fmt.Fprint(w, c.body)
		}))
		got, err := NewQuerier(1, nil).Query(t.Context(), Prometheus(srv.URL), Request{Query: "q"}, 0)
		srv.Close()
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: %v, %v; want %v", c.body, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.body, err, c.err)
		}
		if errors.Is(err, ErrNoValues) != c.noVals {
			t.Errorf("%s: errors.Is(ErrNoValues) = %v", c.body, !c.noVals)
		}
	}
}

func TestJudge(t *testing.T) {
	j := NewJudge()
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		check Check
		value float64
		pass  bool
		why   string
	}{
		{Check{Min: f(99)}, 99.5, true, ""},
		{Check{Min: f(99)}, 98, false, "below the minimum 99"},
		{Check{Max: f(500)}, 501, false, "above the maximum 500"},
		{Check{Min: f(1), Max: f(2)}, 1, true, ""},
		{Check{SuccessCondition: "result >= 99 && result <= 100"}, 99.9, true, ""},
		{Check{SuccessCondition: "result >= 99"}, 50, false, "does not meet successCondition"},
		{Check{FailureCondition: "result > 0.05"}, 0.2, false, "meets failureCondition"},
		{Check{FailureCondition: "result > 0.05"}, 0.01, true, ""},
	}
	for _, c := range cases {
		pass, why, err := j.Pass(c.check, c.value)
		if err != nil || pass != c.pass || !strings.Contains(why, c.why) {
			t.Errorf("%+v with %v: pass %v why %q err %v; want pass %v why ~%q", c.check, c.value, pass, why, err, c.pass, c.why)
		}
	}
	for _, c := range []struct {
		check Check
		want  []string // Error() of each ConditionError
	}{
		{Check{SuccessCondition: "result >= 99", FailureCondition: "result < 10"}, nil},
		{Check{Min: f(1)}, nil},
		{Check{SuccessCondition: "result >>> 2"}, []string{`successCondition "result >>> 2": unexpected token Operator(">") (1:9)`}},
		{Check{FailureCondition: "result + 1"}, []string{`failureCondition "result + 1": expected bool, but got float64`}},
		{Check{SuccessCondition: "rate > 1", FailureCondition: "result >"},
			[]string{`successCondition "rate > 1": unknown name rate (1:1)`, `failureCondition "result >": unexpected token EOF (1:8)`}},
	} {
		var got []string
		for _, e := range j.Validate(c.check) {
			got = append(got, e.Error())
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Validate(%+v) = %q, want %q", c.check, got, c.want)
		}
	}
	if errs := j.Validate(Check{FailureCondition: "result + 1"}); len(errs) != 1 || errs[0].Reason() != "InvalidFailureCondition" {
		t.Errorf("a bad failureCondition's reason: %v", errs)
	}
}
