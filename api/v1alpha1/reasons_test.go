package v1alpha1

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Every reason is a valid condition reason (the API server refuses others
// in status.conditions), and no two names share a value.
func TestReasonsAreConditionReasons(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// metav1.Condition's reason pattern.
	valid := regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)
	seen := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s is not a string literal", name.Name)
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				if !strings.HasPrefix(name.Name, "Reason") || name.Name != "Reason"+v {
					t.Errorf("%s = %q: a reason constant is named Reason + its value", name.Name, v)
				}
				if !valid.MatchString(v) {
					t.Errorf("%s = %q is not a valid condition reason", name.Name, v)
				}
				if other, dup := seen[v]; dup {
					t.Errorf("%s and %s are both %q", name.Name, other, v)
				}
				seen[v] = name.Name
			}
		}
	}
	if len(seen) < 50 {
		t.Errorf("found %d reasons in reasons.go; the parse missed some", len(seen))
	}
}
