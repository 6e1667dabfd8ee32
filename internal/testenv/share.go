package testenv

// Share is the percent of a weighted list's entries (a router's services
// or backends, as unstructured maps) named name, with each entry's weight
// in weightField; an entry without one counts 1, as the routers read it.
// Tests use it to read a route's canary share.
func Share(entries []any, weightField, name string) int32 {
	var total, share float64
	for _, x := range entries {
		e, _ := x.(map[string]any)
		w := 1.0
		if v, ok := e[weightField]; ok {
			w = Number(v)
		}
		total += w
		if e["name"] == name {
			share += w
		}
	}
	if total == 0 {
		return 0
	}
	return int32(share * 100 / total)
}

// Number is an unstructured number (int64 from the apiserver's JSON,
// float64 from a YAML or JSON decoder) as a float64; 0 for anything else.
func Number(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}
