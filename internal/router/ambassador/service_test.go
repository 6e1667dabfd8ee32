package ambassador

import (
	"strings"
	"testing"
)

func TestRewriteService(t *testing.T) {
	for _, tc := range []struct {
		in, stable, want, err string
	}{
		{"app", "app", "app-canary", ""},
		{"app:8080", "app", "app-canary:8080", ""},
		{"http://app", "app", "http://app-canary", ""},
		{"https://app:8443", "app", "https://app-canary:8443", ""},
		{"HTTPS://app:8443", "app", "HTTPS://app-canary:8443", ""},
		{"app.shop", "app", "app-canary.shop", ""},
		{"https://app.shop:8443", "app", "https://app-canary.shop:8443", ""},
		{"app.shop.svc", "app", "app-canary.shop.svc", ""},
		{"app.shop.svc.cluster.local", "app", "app-canary.shop.svc.cluster.local", ""},
		{"http://app.shop.svc.cluster.local:80", "app", "http://app-canary.shop.svc.cluster.local:80", ""},
		// The stable name is a substring of other parts: only the name moves.
		{"https://myapp-app.app:8443", "myapp-app", "https://myapp-app-canary.app:8443", ""},
		{"app.app-ns.svc:9000", "app", "app-canary.app-ns.svc:9000", ""},
		// ... and a value naming another Service is reported, not guessed.
		{"https://myapp-app.ns:8443", "app", "", `names Service "myapp-app", not the stable Service "app"`},
		{"10.0.0.7:8080", "app", "", "IP literal"},
		{"http://10.0.0.7", "app", "", "IP literal"},
		{"[::1]:8080", "app", "", "IP literal"},
		{"https://[2001:db8::1]:443", "app", "", "IP literal"},
		{"app:http", "app", "", `port "http" is not a number`},
		{"App.shop", "App", "", "is not a Service name"},
		{"app..shop", "app", "", "is not a valid domain"},
		{"ht tp://app", "app", "", "is not a URL scheme"},
		{"", "app", "", "is not a Service name"},
	} {
		got, err := RewriteService(tc.in, tc.stable, tc.stable+"-canary")
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

// Every accepted value formats back to itself, and a rewrite changes the
// name and nothing else.
func FuzzParseService(f *testing.F) {
	for _, s := range []string{"app", "https://app.shop:8443", "HTTP://a-b.c.svc.cluster.local:1", "x:0", "[::1]:80",
		"10.0.0.1", "app.", "a..b", "ftp+x://y.z:65535", "1app.ns", "app:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseService(v)
		if err != nil {
			return
		}
		if s.Format() != v {
			t.Fatalf("format(parse(%q)) = %q", v, s.Format())
		}
		out, err := RewriteService(v, s.Name, "canary-x")
		if err != nil {
			t.Fatalf("rewrite of accepted %q: %v", v, err)
		}
		if want := s.Scheme + "canary-x" + s.Suffix + s.Port; out != want {
			t.Fatalf("rewrite(%q) = %q, want %q", v, out, want)
		}
		back, err := ParseService(out)
		if err != nil || back.Scheme != s.Scheme || back.Suffix != s.Suffix || back.Port != s.Port || back.Name != "canary-x" {
			t.Fatalf("rewrite(%q) = %q parses as %+v (%v)", v, out, back, err)
		}
	})
}
