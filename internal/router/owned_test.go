package router_test

import (
	"regexp"
	"testing"

	"github.com/sluice-dev/sluice/internal/router"
)

func TestSpecHash(t *testing.T) {
	a, err := router.SpecHash(map[string]any{"weight": 10})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := router.SpecHash(map[string]any{"weight": 10})
	other, _ := router.SpecHash(map[string]any{"weight": 20})
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a) || a != again || a == other {
		t.Errorf("SpecHash = %q, again %q, of another spec %q: want 16 hex digits, stable, different for another spec", a, again, other)
	}
	if _, err := router.SpecHash(func() {}); err == nil {
		t.Error("SpecHash of what JSON cannot encode: no error")
	}
}
