package v1alpha1

import (
	"regexp"
	"testing"
)

// The cookie regex finds the cookie with its value anywhere in a Cookie
// header, and nothing else, whether a proxy matches the whole value or
// searches it (the regex is anchored).
func TestCookieRegex(t *testing.T) {
	re := regexp.MustCompile(CookieRegex("shop.canary", "rev+2"))
	for header, want := range map[string]bool{
		"shop.canary=rev+2": true, "a=1; shop.canary=rev+2": true, "shop.canary=rev+2; b=2": true, "a=1;shop.canary=rev+2 ;b=2": true,
		"shop.canary=rev+22": false, "xshop.canary=rev+2": false, "shopXcanary=rev+2": false, "shop.canary=revv2": false, "": false,
	} {
		if got := re.MatchString(header); got != want {
			t.Errorf("%q: %v, want %v", header, got, want)
		}
	}
}
