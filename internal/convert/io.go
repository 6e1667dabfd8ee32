package convert

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Decode reads the YAML or JSON documents of r (a List's items as
// objects of their own).
func Decode(r io.Reader) ([]map[string]any, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	var out []map[string]any
	for {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode manifest %d: %w", len(out)+1, err)
		}
		if o == nil {
			continue
		}
		if items, ok := o["items"].([]any); ok && o["kind"] == "List" {
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					out = append(out, m)
				}
			}
			continue
		}
		out = append(out, o)
	}
}

// Render writes the outputs as YAML documents, each headed by comments
// naming its source and what of the source was translated or not
// carried.
func Render(w io.Writer, r Result) error {
	var buf bytes.Buffer
	written := map[string]bool{}
	for i, o := range r.Outputs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		if o.Comment != "" {
			for _, l := range strings.Split(strings.TrimSuffix(o.Comment, "\n"), "\n") {
				buf.WriteString(strings.TrimRight("# "+l, " ") + "\n")
			}
		} else {
			fmt.Fprintf(&buf, "# Converted from %s by kubectl sluice convert.\n", o.From)
		}
		if o.Comment == "" && !written[o.From] {
			written[o.From] = true
			for _, e := range r.Report.Entries {
				if e.Object != o.From || e.Disposition == Carried {
					continue
				}
				line := "#   " + e.Path
				if e.To != "" {
					line += " -> " + e.To
				}
				fmt.Fprintf(&buf, "%s (%s): %s\n", line, e.Disposition, e.Note)
			}
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("write %s converted from %s: %w", o.Object.GetObjectKind().GroupVersionKind().Kind, o.From, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return err
		}
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		if tmpl, ok := m["spec"].(map[string]any)["template"].(map[string]any); ok {
			if md, ok := tmpl["metadata"].(map[string]any); ok {
				delete(md, "creationTimestamp")
			}
		}
		if b, err = yaml.Marshal(m); err != nil {
			return err
		}
		buf.Write(b)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
