package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The dashboard's front door, without a cluster: a page of another site
// can neither read it (the Host must be a loopback name when there is no
// token) nor act through it (a POST needs the dashboard's header and the
// same origin); with a token every request needs it, and ?token= sets
// the cookie the page then sends.
func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	local := (&Server{}).guard(ok)
	tokened := (&Server{opts: Options{Token: "s3cret"}}).guard(ok)
	for _, tc := range []struct {
		name    string
		h       http.Handler
		method  string
		url     string
		headers map[string]string
		want    int
		says    string
	}{
		{"loopback GET", local, "GET", "http://127.0.0.1:3100/api/canaries", nil, http.StatusTeapot, ""},
		{"localhost GET", local, "GET", "http://localhost:3100/", nil, http.StatusTeapot, ""},
		{"ipv6 loopback GET", local, "GET", "http://[::1]:3100/", nil, http.StatusTeapot, ""},
		{"another host (DNS rebinding)", local, "GET", "http://evil.example:3100/api/canaries", nil, http.StatusForbidden, "only on localhost"},
		{"POST without the header", local, "POST", "http://127.0.0.1:3100/api/canaries/ns/c/abort", nil, http.StatusForbidden, "X-Sluice-Dashboard"},
		{"POST from another origin", local, "POST", "http://127.0.0.1:3100/api/canaries/ns/c/abort",
			map[string]string{actionHeader: "1", "Origin": "http://evil.example"}, http.StatusForbidden, "origin"},
		{"POST from the page", local, "POST", "http://127.0.0.1:3100/api/canaries/ns/c/abort",
			map[string]string{actionHeader: "1", "Origin": "http://127.0.0.1:3100"}, http.StatusTeapot, ""},
		{"token: none given", tokened, "GET", "http://10.0.0.5:3100/", nil, http.StatusUnauthorized, "token"},
		{"token: wrong", tokened, "GET", "http://10.0.0.5:3100/?token=guess", nil, http.StatusUnauthorized, "token"},
		{"token: in the URL", tokened, "GET", "http://10.0.0.5:3100/?token=s3cret", nil, http.StatusTeapot, ""},
		{"token: cookie", tokened, "GET", "http://10.0.0.5:3100/api/stream", map[string]string{"Cookie": tokenCookie + "=s3cret"}, http.StatusTeapot, ""},
		{"token: bearer", tokened, "GET", "http://10.0.0.5:3100/api/canaries", map[string]string{"Authorization": "Bearer s3cret"}, http.StatusTeapot, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.url, nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.says) {
				t.Errorf("%s %s: %d %q, want %d saying %q", tc.method, tc.url, w.Code, w.Body.String(), tc.want, tc.says)
			}
			if tc.name == "token: in the URL" && !strings.Contains(w.Header().Get("Set-Cookie"), "HttpOnly") {
				t.Errorf("no HttpOnly cookie set from the token: %q", w.Header().Get("Set-Cookie"))
			}
		})
	}
	if !Loopback("127.0.0.1:3100") || !Loopback("[::1]:0") || !Loopback("localhost:1") || Loopback("0.0.0.0:3100") || Loopback("10.0.0.5:80") {
		t.Error("Loopback misjudges an address")
	}
}
