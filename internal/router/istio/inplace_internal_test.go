package istio

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func TestHostKey(t *testing.T) {
	for host, want := range map[string]string{
		"web":                          "web.shop",
		"web.shop":                     "web.shop",
		"web.shop.svc":                 "web.shop",
		"web.shop.svc.cluster.local":   "web.shop",
		"web.other.svc.cluster.local.": "web.other",
		"shop.example.com":             "shop.example.com",
	} {
		if got := hostKey(host, "shop"); got != want {
			t.Errorf("hostKey(%q) = %q, want %q", host, got, want)
		}
	}
}

func routes(t *testing.T, js string) []any {
	t.Helper()
	var out []any
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const split = `{"destination":{"host":"web","subset":"stable"},"weight":100},{"destination":{"host":"web.shop.svc.cluster.local","subset":"canary"},"weight":0}`

// What splitHTTP writes and refuses, on the user's routes alone.
func TestSplitHTTP(t *testing.T) {
	yes := "1"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Exact: &yes}}}
	for _, tc := range []struct {
		name, http string
		routes     []string
		w, mirror  int32
		hr         *v1alpha1.HeaderRoute
		want, err  string
	}{{
		name:   "two routes split alike, others untouched",
		http:   `[{"name":"a","route":[` + split + `]},{"name":"x","route":[{"destination":{"host":"other"}}]},{"name":"b","route":[` + split + `]}]`,
		routes: []string{"a", "b"}, w: 30,
		want: `[{"name":"a","route":[{"destination":{"host":"web","subset":"stable"},"weight":70},{"destination":{"host":"web.shop.svc.cluster.local","subset":"canary"},"weight":30}]},` +
			`{"name":"x","route":[{"destination":{"host":"other"}}]},` +
			`{"name":"b","route":[{"destination":{"host":"web","subset":"stable"},"weight":70},{"destination":{"host":"web.shop.svc.cluster.local","subset":"canary"},"weight":30}]}]`,
	}, {
		name:   "header route before each, without a match of the user's",
		http:   `[{"name":"a","timeout":"5s","route":[` + split + `]}]`,
		routes: []string{"a"}, hr: hr,
		want: `[{"match":[{"headers":{"x-a":{"exact":"1"}}}],"name":"a-sluice-canary","route":[{"destination":{"host":"web.shop.svc.cluster.local","subset":"canary"}}],"timeout":"5s"},` +
			`{"name":"a","route":[` + split + `],"timeout":"5s"}]`,
	}, {
		name:   "the header route goes with the step",
		http:   `[{"name":"a-sluice-canary","route":[]},{"name":"a","route":[` + split + `]}]`,
		routes: []string{"a"},
		want:   `[{"name":"a","route":[` + split + `]}]`,
	}, {
		name:   "the user's mirror stays when Sluice mirrors nothing",
		http:   `[{"name":"a","mirror":{"host":"audit"},"route":[` + split + `]}]`,
		routes: []string{"a"},
		want:   `[{"mirror":{"host":"audit"},"name":"a","route":[` + split + `]}]`,
	}, {
		name:   "Sluice's mirror goes at 0",
		http:   `[{"name":"a","mirror":{"host":"web","subset":"canary"},"mirrorPercentage":{"value":5},"route":[` + split + `]}]`,
		routes: []string{"a"},
		want:   `[{"name":"a","route":[` + split + `]}]`,
	}, {
		name: "missing route", http: `[]`, routes: []string{"a"}, err: `no HTTP route named "a"`,
	}, {
		name: "a delegate", http: `[{"name":"a","delegate":{"name":"d"}}]`, routes: []string{"a"}, err: "no destinations to split",
	}, {
		name: "another host", http: `[{"name":"a","route":[{"destination":{"host":"api","subset":"stable"}}]}]`, routes: []string{"a"}, err: `sends to host "api"`,
	}, {
		name: "no canary destination", http: `[{"name":"a","route":[{"destination":{"host":"web","subset":"stable"}}]}]`, routes: []string{"a"}, err: "needs two destinations",
	}, {
		name: "the user's mirror with a mirror step", http: `[{"name":"a","mirror":{"host":"audit"},"route":[` + split + `]}]`, routes: []string{"a"}, mirror: 10,
		err: "does not replace a mirror of yours",
	}, {
		name: "a header the route matches already", http: `[{"name":"a","match":[{"headers":{"x-a":{"exact":"2"}}}],"route":[` + split + `]}]`, routes: []string{"a"}, hr: hr,
		err: `already matches header "x-a"`,
	}} {
		got, err := splitHTTP(routes(t, tc.http), tc.routes, "web", "shop", tc.w, tc.mirror, tc.hr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if b, _ := json.Marshal(got); string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}
