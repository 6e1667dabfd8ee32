// Command rulecheck answers, with Traefik's own HTTP rule parser and
// matcher (pkg/muxer/http of Traefik v3.6.12), whether a router rule parses
// and whether it matches a request. Sluice's rule-escaping fuzz test drives
// it: one JSON object per line on stdin, one answer per line on stdout.
//
//	in:  {"rule": <base64>, "syntax": "v3", "host": "a.test", "headers": [[<base64 name>, <base64 value>]]}
//	out: {"matched": true}  or  {"error": "..."}
//
// Rules and headers travel as bytes (base64 in JSON), since JSON strings
// cannot carry invalid UTF-8 and a header value may.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/traefik/traefik/v3/pkg/middlewares/requestdecorator"
	muxhttp "github.com/traefik/traefik/v3/pkg/muxer/http"
)

type query struct {
	Rule    []byte      `json:"rule"`
	Syntax  string      `json:"syntax"`
	Host    string      `json:"host"`
	Headers [][2][]byte `json:"headers"`
}

type answer struct {
	Matched bool   `json:"matched"`
	Error   string `json:"error,omitempty"`
}

func main() {
	parser, err := muxhttp.NewSyntaxParser()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rulecheck:", err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var q query
		if err := json.Unmarshal(in.Bytes(), &q); err != nil {
			_ = out.Encode(answer{Error: "bad query: " + err.Error()})
			continue
		}
		_ = out.Encode(check(parser, q))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "rulecheck:", err)
		os.Exit(1)
	}
}

func check(parser muxhttp.SyntaxParser, q query) answer {
	mux := muxhttp.NewMuxer(parser)
	hit := false
	err := mux.AddRoute(string(q.Rule), q.Syntax, 1, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	if err != nil {
		return answer{Error: err.Error()}
	}
	req := httptest.NewRequest(http.MethodGet, "http://example.test/", nil)
	if q.Host != "" {
		req.Host = q.Host
	}
	for _, h := range q.Headers {
		req.Header.Add(string(h[0]), string(h[1]))
	}
	// Traefik puts the canonical host in the request's context before
	// routing (its Host matcher reads it there): so does this.
	requestdecorator.New(nil).ServeHTTP(httptest.NewRecorder(), req, mux.ServeHTTP)
	return answer{Matched: hit}
}
