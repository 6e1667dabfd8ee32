package testenv

// Test servers for the metric providers nothing real can stand in for here
// (Datadog, New Relic, InfluxDB 2.x): each implements the documented
// request (method, path, headers, body) and answers in the documented
// shapes, errors and empty results included. Every request it cannot read
// is a 400 naming what is wrong, so a client sending the wrong shape fails
// the test instead of reading a made-up value.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Series are the values a fake serves, by query; a nil value is a query
// that matches no data.
type Series map[string]*float64

// Num is a value for Series.
func Num(v float64) *float64 { return &v }

func (s Series) lookup(w http.ResponseWriter, q string) (v *float64, ok bool) {
	v, ok = s[q]
	if !ok {
		http.Error(w, fmt.Sprintf(`{"errors":["unknown query %q"]}`, q), http.StatusBadRequest)
	}
	return v, ok
}

// StartDatadog serves POST /api/v2/query/scalar and GET /api/v1/query
// for the keys given.
func StartDatadog(t testing.TB, apiKey, appKey string, data Series) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("DD-API-KEY") != apiKey || r.Header.Get("DD-APPLICATION-KEY") != appKey {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors":["Forbidden"]}`)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v2/query/scalar":
			var body struct {
				Data struct {
					Type       string `json:"type"`
					Attributes struct {
						From    int64 `json:"from"`
						To      int64 `json:"to"`
						Queries []struct {
							DataSource string `json:"data_source"`
							Name       string `json:"name"`
							Query      string `json:"query"`
							Aggregator string `json:"aggregator"`
						} `json:"queries"`
					} `json:"attributes"`
				} `json:"data"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Data.Type != "scalar_request" ||
				len(body.Data.Attributes.Queries) != 1 || body.Data.Attributes.Queries[0].DataSource != "metrics" ||
				body.Data.Attributes.From <= 0 || body.Data.Attributes.To <= body.Data.Attributes.From {
				http.Error(w, `{"errors":["Invalid scalar request"]}`, http.StatusBadRequest)
				return
			}
			q := body.Data.Attributes.Queries[0]
			v, ok := data.lookup(w, q.Query)
			if !ok {
				return
			}
			values := "[]"
			if v != nil {
				values = fmt.Sprintf("[%g]", *v)
			}
			fmt.Fprintf(w, `{"data":{"type":"scalar_response","attributes":{"columns":[{"name":%q,"type":"number","values":%s,"meta":{"unit":null}}]}}}`, q.Name, values)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/query":
			from, err1 := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
			to, err2 := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
			if err1 != nil || err2 != nil || to <= from {
				http.Error(w, `{"errors":["from and to are required"]}`, http.StatusBadRequest)
				return
			}
			v, ok := data.lookup(w, r.URL.Query().Get("query"))
			if !ok {
				return
			}
			if v == nil {
				fmt.Fprintf(w, `{"status":"ok","res_type":"time_series","series":[],"from_date":%d,"to_date":%d}`, from*1000, to*1000)
				return
			}
			// The newest bucket is not complete yet: null.
			fmt.Fprintf(w, `{"status":"ok","res_type":"time_series","series":[{"metric":"m","pointlist":[[%d,1.5],[%d,%g],[%d,null]]}]}`,
				from*1000, (from+30)*1000, *v, (from+60)*1000)
		default:
			http.Error(w, `{"errors":["Not found"]}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// StartNewRelic serves NerdGraph's POST /graphql for one account and key.
func StartNewRelic(t testing.TB, apiKey string, account int64, data Series) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/graphql" {
			http.Error(w, `{"errors":[{"message":"not found"}]}`, http.StatusNotFound)
			return
		}
		if r.Header.Get("API-Key") != apiKey {
			// NerdGraph answers a bad key with 401 and a GraphQL error.
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"message":"Invalid API key","extensions":{"errorClass":"UNAUTHORIZED"}}]}`)
			return
		}
		var body struct {
			Query     string `json:"query"`
			Variables struct {
				AccountID int64  `json:"accountId"`
				NRQL      string `json:"nrql"`
				Timeout   int    `json:"timeout"`
			} `json:"variables"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !strings.Contains(body.Query, "nrql(query: $nrql") {
			http.Error(w, `{"errors":[{"message":"Syntax Error"}]}`, http.StatusBadRequest)
			return
		}
		if body.Variables.AccountID != account {
			// An account the key cannot read: HTTP 200, a GraphQL error.
			fmt.Fprint(w, `{"data":{"actor":{"account":null}},"errors":[{"message":"Account not found or access denied","path":["actor","account"]}]}`)
			return
		}
		nrql, since, ok := strings.Cut(body.Variables.NRQL, " SINCE ")
		if !ok || !strings.HasSuffix(since, "seconds ago") {
			fmt.Fprintf(w, `{"data":null,"errors":[{"message":"NRQL query without the window the client must add: %s"}]}`, body.Variables.NRQL)
			return
		}
		v, ok := data[nrql]
		switch {
		case !ok:
			fmt.Fprintf(w, `{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error: Error at line 1 position 1, unexpected '%s'","extensions":{"errorClass":"INVALID_INPUT"}}]}`, nrql)
		case v == nil:
			fmt.Fprint(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"average.duration":null}]}}}}}`)
		default:
			fmt.Fprintf(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"percentile.duration":{"95":%g}}]}}}}}`, *v)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// StartInfluxDB2 serves InfluxDB 2.x's POST /api/v2/query (Flux, annotated
// CSV) for one org and token.
func StartInfluxDB2(t testing.TB, token, org string, data Series) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jsonErr := func(status int, code, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"code":%q,"message":%q}`, code, msg)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/query" {
			jsonErr(http.StatusNotFound, "not found", "path not found")
			return
		}
		if r.Header.Get("Authorization") != "Token "+token {
			jsonErr(http.StatusUnauthorized, "unauthorized", "unauthorized access")
			return
		}
		if r.URL.Query().Get("org") != org {
			jsonErr(http.StatusNotFound, "not found", fmt.Sprintf("failed to decode request body: organization name %q not found", r.URL.Query().Get("org")))
			return
		}
		var body struct {
			Query string `json:"query"`
			Type  string `json:"type"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || body.Type != "flux" {
			jsonErr(http.StatusBadRequest, "invalid", "failed to decode request body")
			return
		}
		v, ok := data[body.Query]
		if !ok {
			jsonErr(http.StatusBadRequest, "invalid", "compilation failed: error at @1:1-1:5: undefined identifier "+strconv.Quote(body.Query))
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if v == nil {
			// No tables: an empty body.
			return
		}
		now := time.Now().UTC()
		fmt.Fprintf(w, "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n"+
			"#group,false,false,true,true,false,false,true,true\r\n"+
			"#default,_result,,,,,,,\r\n"+
			",result,table,_start,_stop,_time,_value,_field,_measurement\r\n"+
			",,0,%[1]s,%[2]s,%[1]s,1.5,value,quality\r\n"+
			",,0,%[1]s,%[2]s,%[2]s,%[3]g,value,quality\r\n\r\n",
			now.Add(-time.Minute).Format(time.RFC3339), now.Format(time.RFC3339), *v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// StartJSONEndpoint is an endpoint a team built: GET /slo?copy=… answers
// {"data":{"slo":{"value":…}}} to a request with the right token.
func StartJSONEndpoint(t testing.TB, auth string) *httptest.Server {
	values := Series{"good": Num(99), "failing": Num(80), "none": nil}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != auth {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid token"}`)
			return
		}
		if r.URL.Path != "/slo" {
			http.NotFound(w, r)
			return
		}
		v, ok := values.lookup(w, r.URL.Query().Get("copy"))
		if !ok {
			return
		}
		if v == nil {
			fmt.Fprint(w, `{"data":{"slo":{"value":null,"window":"5m"}}}`)
			return
		}
		fmt.Fprintf(w, `{"data":{"slo":{"value":%g,"window":"5m"}}}`, *v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// BasicAuth is the value of a basic Authorization header after "Basic ".
func BasicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// StartCloudWatch serves CloudWatch's GetMetricData as the AWS SDK for Go
// v2 speaks it (Smithy RPC v2 CBOR: POST
// /service/GraniteServiceVersion20100801/operation/GetMetricData). It
// checks the SigV4 Authorization header's access key and region scope (not
// the signature itself) and answers errors the way the service does
// (__type and message in the body, X-Amzn-Query-Error). data is keyed by
// the MetricStat's MetricName, or the Expression.
func StartCloudWatch(t testing.TB, accessKeyID, region string, data Series) *httptest.Server {
	em, err := cbor.EncOptions{Time: cbor.TimeUnix, TimeTag: cbor.EncTagRequired}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := func(status int, v any) {
			b, err := em.Marshal(v)
			if err != nil {
				t.Errorf("encode CBOR: %v", err)
			}
			w.Header().Set("Content-Type", "application/cbor")
			w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
			w.WriteHeader(status)
			_, _ = w.Write(b)
		}
		fail := func(status int, typ, query, msg string) {
			w.Header().Set("X-Amzn-Query-Error", query+";Sender")
			answer(status, map[string]any{"__type": typ, "message": msg})
		}
		if r.Method != http.MethodPost || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/GetMetricData" ||
			r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || r.Header.Get("Content-Type") != "application/cbor" {
			fail(http.StatusBadRequest, "com.amazon.coral.service#UnknownOperationException", "UnknownOperation", "unknown operation "+r.Method+" "+r.URL.Path)
			return
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+accessKeyID+"/") || !strings.Contains(auth, "/"+region+"/monitoring/aws4_request") {
			fail(http.StatusForbidden, "com.amazon.coral.service#UnrecognizedClientException", "InvalidClientTokenId", "The security token included in the request is invalid.")
			return
		}
		var in struct {
			StartTime, EndTime time.Time
			ScanBy             string
			MetricDataQueries  []struct {
				Id         string
				Expression string
				ReturnData *bool
				MetricStat *struct {
					Metric struct{ Namespace, MetricName string }
					Period int
					Stat   string
				}
			}
		}
		b, _ := io.ReadAll(r.Body)
		if err := cbor.Unmarshal(b, &in); err != nil || in.StartTime.IsZero() || !in.EndTime.After(in.StartTime) {
			fail(http.StatusBadRequest, "com.amazonaws.cloudwatch#InvalidParameterValueException", "InvalidParameterValue", fmt.Sprintf("The parameters StartTime and EndTime are required (%v)", err))
			return
		}
		var results []map[string]any
		for _, q := range in.MetricDataQueries {
			if q.ReturnData != nil && !*q.ReturnData {
				continue
			}
			key := q.Expression
			if q.MetricStat != nil {
				key = q.MetricStat.Metric.MetricName
			}
			v, ok := data[key]
			if !ok {
				fail(http.StatusBadRequest, "com.amazonaws.cloudwatch#InvalidParameterValueException", "InvalidParameterValue", fmt.Sprintf("Unrecognized metric or expression %q in query %s", key, q.Id))
				return
			}
			res := map[string]any{"Id": q.Id, "Label": key, "StatusCode": "Complete", "Timestamps": []time.Time{}, "Values": []float64{}}
			if v != nil {
				// Newest first, as ScanBy TimestampDescending asks.
				res["Timestamps"] = []time.Time{in.EndTime.Add(-time.Minute), in.EndTime.Add(-2 * time.Minute)}
				res["Values"] = []float64{*v, 1.5}
				if in.ScanBy != "TimestampDescending" {
					res["Values"] = []float64{1.5, *v}
				}
			}
			results = append(results, res)
		}
		answer(http.StatusOK, map[string]any{"MetricDataResults": results, "Messages": []any{}})
	}))
	t.Cleanup(srv.Close)
	return srv
}
