package convert

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// corpus is every source manifest of testdata/{flagger,argo}.
func corpus(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	return slices.DeleteFunc(files, func(f string) bool { return strings.HasPrefix(f, "testdata/golden") })
}

func convertFile(t *testing.T, file string) Result {
	t.Helper()
	return convertFileWith(t, file, Options{})
}

func convertFileWith(t *testing.T, file string, opts Options) Result {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return Convert(objs, opts)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/convert -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./internal/convert -update, then read the diff):\n%s", path, got)
	}
}

// TestGolden converts each corpus file and compares the manifests and the
// report with their golden files.
func TestGolden(t *testing.T) {
	for _, file := range corpus(t) {
		name := strings.TrimSuffix(strings.ReplaceAll(strings.TrimPrefix(file, "testdata/"), "/", "-"), ".yaml")
		t.Run(name, func(t *testing.T) {
			r := convertFile(t, file)
			var out bytes.Buffer
			if err := Render(&out, r); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".yaml", out.Bytes())
			var rep bytes.Buffer
			r.Report.Write(&rep, true)
			golden(t, name+".report", rep.Bytes())
		})
	}
}

// TestGoldenHandover converts each Flagger corpus file with --handover
// and compares the hand-over file with its golden file: each Canary's
// hand-over Service (and HTTPRoute), the steps of the switch as comments.
// The rest of the output is the one TestGolden checks.
func TestGoldenHandover(t *testing.T) {
	files, err := filepath.Glob("testdata/flagger/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Flagger corpus: %v", err)
	}
	for _, file := range files {
		name := "handover-" + strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			rest, handover := convertFileWith(t, file, Options{Handover: true}).SplitHandover()
			var out bytes.Buffer
			if err := Render(&out, rest); err != nil {
				t.Fatal(err)
			}
			if plain := convertFile(t, file); len(plain.Outputs) != len(rest.Outputs) {
				t.Errorf("with --handover, %d outputs besides the hand-over objects; without, %d", len(rest.Outputs), len(plain.Outputs))
			}
			out.Reset()
			if err := Render(&out, handover); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".yaml", out.Bytes())
		})
	}
}

// schemaFile maps a source kind to its field list.
var schemaFile = map[string]string{
	"Canary":                  "flagger-canary.txt",
	"MetricTemplate":          "flagger-metrictemplate.txt",
	"AlertProvider":           "flagger-alertprovider.txt",
	"Rollout":                 "argo-rollout.txt",
	"AnalysisTemplate":        "argo-analysistemplate.txt",
	"ClusterAnalysisTemplate": "argo-clusteranalysistemplate.txt",
}

func readFields(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "fields", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

var pathToken = regexp.MustCompile(`\[\d+\]|[^.\[]+`)

// schemaPath is the schema path of a concrete one: indices become [],
// map keys {}.
func schemaPath(concrete string, schema map[string]bool) string {
	cur := ""
	for _, tok := range pathToken.FindAllString(concrete, -1) {
		if schema[cur] && !hasPrefixIn(schema, cur+".") && !hasPrefixIn(schema, cur+"[") && !hasPrefixIn(schema, cur+"{") {
			return cur // a free-form field: what is under it is its value
		}
		switch {
		case strings.HasPrefix(tok, "["):
			cur += "[]"
		case cur == "":
			cur = tok
		case schema[cur+"."+tok]:
			cur += "." + tok
		case schema[cur+"{}"] || hasPrefixIn(schema, cur+"{}."):
			cur += "{}"
		default:
			cur += "." + tok
		}
	}
	return cur
}

func hasPrefixIn(schema map[string]bool, prefix string) bool {
	for p := range schema {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// TestFieldCoverage checks that the corpus reaches every field of each
// source schema (testdata/fields, from the peers' CRDs): each leaf field
// is claimed by a report entry of its own or of an ancestor, and no
// corpus field is one convert does not know. The dispositions per field
// are written to testdata/golden/coverage.txt.
func TestFieldCoverage(t *testing.T) {
	disps := map[string]map[string]map[Disposition]bool{} // kind -> schema path -> dispositions
	for _, file := range corpus(t) {
		r := convertFile(t, file)
		for _, e := range r.Report.Entries {
			if strings.HasPrefix(e.Note, "not a field convert knows") {
				t.Errorf("%s: %s %s is a field convert does not know", file, e.Object, e.Path)
			}
			kind, _, _ := strings.Cut(e.Object, " ")
			if disps[kind] == nil {
				disps[kind] = map[string]map[Disposition]bool{}
			}
			fields := readFields(t, schemaFile[kind])
			set := map[string]bool{}
			for _, f := range fields {
				set[f] = true
			}
			p := strings.TrimSuffix(schemaPath(e.Path, set), "[]")
			if !set[p] && p != "spec" {
				t.Errorf("%s: %s %s (%s) is not a field of the schema", file, e.Object, e.Path, p)
			}
			if disps[kind][p] == nil {
				disps[kind][p] = map[Disposition]bool{}
			}
			disps[kind][p][e.Disposition] = true
		}
	}
	var out strings.Builder
	kinds := []string{"Canary", "MetricTemplate", "AlertProvider", "Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate"}
	for _, kind := range kinds {
		fields := readFields(t, schemaFile[kind])
		counts := map[string]int{}
		var lines []string
		for _, f := range fields {
			if slices.ContainsFunc(fields, func(g string) bool {
				return strings.HasPrefix(g, f+".") || strings.HasPrefix(g, f+"[]") || strings.HasPrefix(g, f+"{}")
			}) {
				continue // an interior field: its leaves are counted
			}
			got := map[Disposition]bool{}
			for p := f; p != ""; p = parentSchema(p) {
				for d := range disps[kind][p] {
					got[d] = true
				}
				if len(got) > 0 {
					break
				}
			}
			class := classify(got)
			if class == "" {
				t.Errorf("%s %s: no corpus manifest reaches this field", kind, f)
				class = "MISSING"
			}
			counts[class]++
			lines = append(lines, fmt.Sprintf("  %-12s %s", class, f))
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		fmt.Fprintf(&out, "%s: %d fields: %d carried, %d translated, %d not carried, %d depending on the value\n", kind, total,
			counts["carried"], counts["translated"], counts["not-carried"], counts["depends"])
		out.WriteString(strings.Join(lines, "\n") + "\n")
	}
	golden(t, "coverage.txt", []byte(out.String()))
}

func parentSchema(p string) string {
	p = strings.TrimSuffix(strings.TrimSuffix(p, "[]"), "{}")
	i := strings.LastIndex(p, ".")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(p[:i], "[]"), "{}")
}

func classify(d map[Disposition]bool) string {
	switch {
	case len(d) == 0:
		return ""
	case len(d) > 1:
		return "depends"
	case d[Carried]:
		return "carried"
	case d[Translated]:
		return "translated"
	}
	return "not-carried"
}
