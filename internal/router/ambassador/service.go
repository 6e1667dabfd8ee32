// Package ambassador holds what the Ambassador/Emissary router needs that
// can be settled without a cluster: reading and rewriting a Mapping's
// `service` field. The field is parsed, never string-replaced (Argo
// Rollouts lost the scheme in its issue #3593, and its fix replaces the
// first substring equal to the stable name, wherever it is).
package ambassador

import (
	"fmt"
	"net/netip"
	"strings"
)

// Service is a Mapping's `service` value split into its parts:
// [scheme://]name[.namespace[.svc[.cluster.local]]][:port]. Format joins
// them back exactly as they were written.
type Service struct {
	// Scheme is the scheme with its "://" ("https://", "HTTP://"), or "".
	Scheme string
	// Name is the Kubernetes Service name, the only part a rewrite changes.
	Name string
	// Suffix is everything after the name up to the port: "" or a dotted
	// domain starting with "." (".ns", ".ns.svc.cluster.local").
	Suffix string
	// Port is the port with its ":" (":8443"), or "".
	Port string
}

// Format returns the value the parts were parsed from.
func (s Service) Format() string { return s.Scheme + s.Name + s.Suffix + s.Port }

// ParseService splits a Mapping's `service` value. A value whose host is
// an IP literal, or that is not of the form above, is an error: there is no
// Service name in it to replace, and Sluice reports it rather than guess.
func ParseService(v string) (Service, error) {
	var s Service
	rest := v
	if i := strings.Index(rest, "://"); i >= 0 {
		if !validScheme(rest[:i]) {
			return Service{}, fmt.Errorf("service %q: %q is not a URL scheme", v, rest[:i])
		}
		s.Scheme, rest = rest[:i+3], rest[i+3:]
	}
	if strings.HasPrefix(rest, "[") {
		return Service{}, fmt.Errorf("service %q: the host is an IP literal, not a Service name: nothing to replace", v)
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		port := rest[i+1:]
		if !allDigits(port) {
			return Service{}, fmt.Errorf("service %q: port %q is not a number", v, port)
		}
		host, s.Port = rest[:i], rest[i:]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return Service{}, fmt.Errorf("service %q: the host is an IP literal, not a Service name: nothing to replace", v)
	}
	name, suffix, _ := strings.Cut(host, ".")
	if !dnsLabel(name) {
		return Service{}, fmt.Errorf("service %q: %q is not a Service name (a DNS label: lowercase letters, digits and '-')", v, name)
	}
	s.Name = name
	if suffix != "" || strings.Contains(host, ".") {
		for _, l := range strings.Split(suffix, ".") {
			if !dnsLabel(l) {
				return Service{}, fmt.Errorf("service %q: %q is not a valid domain after the Service name", v, "."+suffix)
			}
		}
		s.Suffix = "." + suffix
	}
	return s, nil
}

// RewriteService replaces the Service name stable in a Mapping's `service`
// value by canary, keeping scheme, namespace suffix and port exactly. A
// value naming another Service is an error.
func RewriteService(v, stable, canary string) (string, error) {
	s, err := ParseService(v)
	if err != nil {
		return "", err
	}
	if s.Name != stable {
		return "", fmt.Errorf("service %q names Service %q, not the stable Service %q", v, s.Name, stable)
	}
	if !dnsLabel(canary) {
		return "", fmt.Errorf("%q is not a Service name", canary)
	}
	s.Name = canary
	return s.Format(), nil
}

func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// dnsLabel: RFC 1123 label, lowercase, at most 63 characters.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z') && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
