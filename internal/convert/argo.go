package convert

func argoRollout(t *tracker, in input) []Output { return nil }

func argoAnalysisTemplate(t *tracker) {}
