package convert

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Disposition is what became of a source field.
type Disposition string

// The dispositions.
const (
	// Carried: the same setting, maybe under another name.
	Carried Disposition = "carried"
	// Translated: Sluice spells the behaviour differently; Note says how.
	Translated Disposition = "translated"
	// NotCarried: the output does not have it; Note says why and what to
	// use instead.
	NotCarried Disposition = "not carried"
)

// Entry is the fate of one source field (and everything under it).
type Entry struct {
	// Object is the source object, "Kind namespace/name".
	Object string
	// Path of the field in the source object, e.g. spec.analysis.metrics[0].name.
	Path        string
	Disposition Disposition
	// To is where it went in the output, "Kind.path", when it went somewhere.
	To string
	// Note says how it was translated, or why it was not carried.
	Note string
}

// Report is every source field's fate, in source order per object.
type Report struct {
	Entries []Entry
}

// NotCarried is the entries of fields the output does not have.
func (r Report) NotCarried() []Entry {
	var out []Entry
	for _, e := range r.Entries {
		if e.Disposition == NotCarried {
			out = append(out, e)
		}
	}
	return out
}

// Translated is the entries of fields translated.
func (r Report) Translated() []Entry {
	var out []Entry
	for _, e := range r.Entries {
		if e.Disposition == Translated {
			out = append(out, e)
		}
	}
	return out
}

// Write prints the report: the not-carried fields, then the translated
// ones, then a count (carried fields are listed only when all is true).
func (r Report) Write(w io.Writer, all bool) {
	var c, t, n int
	for _, e := range r.Entries {
		switch e.Disposition {
		case Carried:
			c++
		case Translated:
			t++
		case NotCarried:
			n++
		}
	}
	section := func(title string, d Disposition) {
		first := true
		for _, e := range r.Entries {
			if e.Disposition != d {
				continue
			}
			if first {
				fmt.Fprintf(w, "%s:\n", title)
				first = false
			}
			line := "  " + e.Object + ": " + e.Path
			if e.To != "" {
				line += " -> " + e.To
			}
			if e.Note != "" {
				line += ": " + e.Note
			}
			fmt.Fprintln(w, line)
		}
	}
	section("NOT CARRIED", NotCarried)
	section("TRANSLATED", Translated)
	if all {
		section("CARRIED", Carried)
	}
	fmt.Fprintf(w, "%d fields carried, %d translated, %d not carried\n", c, t, n)
}

// mark is a claim on a source path and everything under it.
type mark struct {
	disp     Disposition
	to, note string
}

// tracker records the fate of one source object's fields.
type tracker struct {
	object string
	root   map[string]any
	order  []string
	marks  map[string]mark
}

func newTracker(object string, root map[string]any) *tracker {
	return &tracker{object: object, root: root, marks: map[string]mark{}}
}

func (t *tracker) set(path string, m mark) {
	if _, ok := t.marks[path]; !ok {
		t.order = append(t.order, path)
	}
	t.marks[path] = m
}

// claimed says whether path or one of its ancestors carries a mark.
func (t *tracker) claimed(path string) bool {
	for p := path; p != ""; p = parent(p) {
		if _, ok := t.marks[p]; ok {
			return true
		}
	}
	return false
}

// parent of a.b[2].c is a.b[2], of a.b[2] is a.b, of a is "".
func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// finish reports every leaf of the object no mark claims as not carried,
// and returns the entries in path order.
func (t *tracker) finish() []Entry {
	var leaves []string
	leavesOf(t.root, "", &leaves)
	for _, l := range leaves {
		if strings.HasPrefix(l, "metadata.") || strings.HasPrefix(l, "status") || l == "apiVersion" || l == "kind" {
			continue
		}
		if !t.claimed(l) {
			t.set(l, mark{disp: NotCarried, note: "not a field convert knows; check what it did and set it by hand"})
		}
	}
	paths := slices.Clone(t.order)
	slices.SortStableFunc(paths, comparePaths)
	out := make([]Entry, 0, len(paths))
	for _, p := range paths {
		m := t.marks[p]
		out = append(out, Entry{Object: t.object, Path: p, Disposition: m.disp, To: m.to, Note: m.note})
	}
	return out
}

// comparePaths orders paths by their segments, indices numerically.
func comparePaths(a, b string) int {
	sa, sb := splitPath(a), splitPath(b)
	for i := 0; i < len(sa) && i < len(sb); i++ {
		if sa[i] == sb[i] {
			continue
		}
		na, ea := strconv.Atoi(sa[i])
		nb, eb := strconv.Atoi(sb[i])
		if ea == nil && eb == nil {
			return na - nb
		}
		return strings.Compare(sa[i], sb[i])
	}
	return len(sa) - len(sb)
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}

func leavesOf(v any, path string, out *[]string) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && path != "" {
			*out = append(*out, path)
		}
		for k, c := range x {
			leavesOf(c, join(k), out)
		}
	case []any:
		if len(x) == 0 {
			*out = append(*out, path)
		}
		for i, c := range x {
			leavesOf(c, fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		*out = append(*out, path)
	}
}

// node is a value of the source object at a path, present or not.
type node struct {
	t    *tracker
	path string
	v    any
	ok   bool
}

func (t *tracker) at(path string) node {
	n := node{t: t, v: t.root, ok: true}
	for _, k := range strings.Split(path, ".") {
		n = n.get(k)
	}
	return n
}

// get is the child field k.
func (n node) get(k string) node {
	c := node{t: n.t, path: k}
	if n.path != "" {
		c.path = n.path + "." + k
	}
	if m, ok := n.v.(map[string]any); ok {
		c.v, c.ok = m[k]
	}
	return c
}

// items are the elements of a list.
func (n node) items() []node {
	l, _ := n.v.([]any)
	out := make([]node, len(l))
	for i, v := range l {
		out[i] = node{t: n.t, path: fmt.Sprintf("%s[%d]", n.path, i), v: v, ok: true}
	}
	return out
}

// keys of a map, sorted.
func (n node) keys() []string {
	m, _ := n.v.(map[string]any)
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (n node) str() string {
	switch x := n.v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// int is the value as a number (YAML numbers decode as int64 or float64).
func (n node) int() (int64, bool) {
	switch x := n.v.(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), x == float64(int64(x))
	case int:
		return int64(x), true
	case string:
		i, err := strconv.ParseInt(x, 10, 64)
		return i, err == nil
	}
	return 0, false
}

func (n node) float() (float64, bool) {
	switch x := n.v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func (n node) bool() bool {
	b, _ := n.v.(bool)
	return b
}

func (n node) stringMap() map[string]string {
	m, _ := n.v.(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// carry marks the field (and what is under it) carried to `to`.
func (n node) carry(to string) node {
	if n.ok {
		n.t.set(n.path, mark{disp: Carried, to: to})
	}
	return n
}

// translate marks the field translated to `to`, noting how.
func (n node) translate(to, note string) node {
	if n.ok {
		n.t.set(n.path, mark{disp: Translated, to: to, note: note})
	}
	return n
}

// drop marks the field not carried, noting why.
func (n node) drop(note string) {
	if !n.ok {
		return
	}
	// What was read under it is not carried either.
	n.t.order = slices.DeleteFunc(n.t.order, func(p string) bool {
		if strings.HasPrefix(p, n.path+".") || strings.HasPrefix(p, n.path+"[") {
			delete(n.t.marks, p)
			return true
		}
		return false
	})
	n.t.set(n.path, mark{disp: NotCarried, note: note})
}

// dropf is drop with a formatted note.
func (n node) dropf(format string, args ...any) {
	n.drop(fmt.Sprintf(format, args...))
}
