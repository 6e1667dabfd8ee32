// Package cloudwatch is the cloudwatch metric provider: GetMetricData
// through the AWS SDK for Go v2. It is its own package, registered with
// the controller's Querier (analysis.Querier.Register), so that what else
// imports internal/analysis (the kubectl plugin's lint and convert) does
// not carry the SDK.
package cloudwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/sluice-dev/sluice/internal/analysis"
)

// Fetcher asks CloudWatch; it keeps one SDK client per provider
// configuration.
type Fetcher struct {
	mu      sync.Mutex
	clients map[string]*cloudwatch.Client
}

// New makes a Fetcher.
func New() *Fetcher { return &Fetcher{clients: map[string]*cloudwatch.Client{}} }

// Fetch asks CloudWatch's GetMetricData through the AWS SDK for
// Go v2 (SigV4, the credential chain, the regional endpoints and the wire
// protocol are the SDK's). The query is a JSON array of MetricDataQuery
// objects, as the API spells them; exactly one may return data, and its
// newest value is the check's value. The window is the check's.
func (f *Fetcher) Fetch(ctx context.Context, hc *http.Client, p analysis.Provider, r analysis.Request, now time.Time) (float64, error) {
	var queries []types.MetricDataQuery
	if err := json.Unmarshal([]byte(r.Query), &queries); err != nil {
		var one types.MetricDataQuery
		if json.Unmarshal([]byte(r.Query), &one) != nil {
			return 0, fmt.Errorf("the query must be a JSON array of MetricDataQuery objects: %w", err)
		}
		queries = []types.MetricDataQuery{one}
	}
	if len(queries) == 0 {
		return 0, errors.New("the query has no MetricDataQuery")
	}
	c, err := f.client(ctx, hc, p)
	if err != nil {
		return 0, err
	}
	end := now.Truncate(time.Second)
	out, err := c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime:         aws.Time(end.Add(-r.Window)),
		EndTime:           aws.Time(end),
		MetricDataQueries: queries,
		ScanBy:            types.ScanByTimestampDescending,
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return 0, fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
		}
		return 0, err
	}
	switch len(out.MetricDataResults) {
	case 0:
		return 0, analysis.ErrNoValues
	case 1:
	default:
		return 0, fmt.Errorf("returned %d results; set ReturnData false on all queries but one", len(out.MetricDataResults))
	}
	res := out.MetricDataResults[0]
	if res.StatusCode == types.StatusCodeForbidden || res.StatusCode == types.StatusCodeInternalError {
		return 0, fmt.Errorf("result %s: %s%s", aws.ToString(res.Id), res.StatusCode, cloudWatchMessages(res.Messages, out.Messages))
	}
	if len(res.Values) == 0 {
		return 0, fmt.Errorf("%w%s", analysis.ErrNoValues, cloudWatchMessages(res.Messages, out.Messages))
	}
	// Newest first (ScanBy TimestampDescending).
	return res.Values[0], nil
}

func cloudWatchMessages(lists ...[]types.MessageData) string {
	var out []string
	for _, l := range lists {
		for _, m := range l {
			out = append(out, aws.ToString(m.Code)+": "+aws.ToString(m.Value))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, "; ") + ")"
}

// cloudWatchClient is the provider's CloudWatch client, made once: keys
// from the Secret, or the pod's own identity (the SDK's default chain:
// IRSA, EKS Pod Identity, instance metadata); spec.provider.address, when
// set, replaces the regional endpoint. Requests go through the provider's
// HTTP client (its bounds and headers).
func (f *Fetcher) client(ctx context.Context, httpClient *http.Client, p analysis.Provider) (*cloudwatch.Client, error) {
	k := p.Key()
	f.mu.Lock()
	c, ok := f.clients[k]
	f.mu.Unlock()
	if ok {
		return c, nil
	}
	region := p.CloudWatch.Region
	var cfg aws.Config
	if p.Secret != nil {
		cfg = aws.Config{Region: region, Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			p.SecretValue("aws-access-key-id"), p.SecretValue("aws-secret-access-key"), p.SecretValue("aws-session-token")))}
	} else {
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(region)); err != nil {
			return nil, fmt.Errorf("AWS credentials from the pod's identity: %w", err)
		}
	}
	hc := cborOnly{httpClient}
	c = cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.HTTPClient = hc
		// One attempt: a failed query is asked again at the next round,
		// and a rate limit is honoured by the Querier's cache.
		o.RetryMaxAttempts = 1
		if p.Address != "" {
			o.BaseEndpoint = aws.String(p.Address)
		}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[k] = c
	return c, nil
}

// cborOnly refuses a successful answer that is not CBOR (a proxy's page,
// say), quoting it: the SDK would only say it could not decode it.
type cborOnly struct{ *http.Client }

func (c cborOnly) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.Client.Do(req)
	if err != nil || resp.StatusCode/100 != 2 || strings.Contains(resp.Header.Get("Content-Type"), "cbor") {
		return resp, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return nil, fmt.Errorf("not a CloudWatch answer (HTTP %d, %s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), analysis.Snippet(b))
}
