package analysis

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Check is how one metric's value is judged: an optional range, and
// optional expr-lang conditions over `result` (the value).
type Check struct {
	// Min and Max bound the value (inclusive); nil is unbounded.
	Min, Max *float64
	// SuccessCondition, when set, must be true (e.g. "result >= 99").
	SuccessCondition string
	// FailureCondition, when set, must be false (e.g. "result > 500").
	FailureCondition string
}

// Judge compiles expressions once and judges values; safe for concurrent
// use.
type Judge struct {
	mu       sync.Mutex
	programs map[string]*vm.Program
}

// NewJudge makes a Judge.
func NewJudge() *Judge { return &Judge{programs: map[string]*vm.Program{}} }

// Validate compiles a check's expressions, so a bad one is reported when
// the Canary is read, naming the expression.
func (j *Judge) Validate(c Check) error {
	for _, e := range []string{c.SuccessCondition, c.FailureCondition} {
		if e == "" {
			continue
		}
		if _, err := j.program(e); err != nil {
			return err
		}
	}
	return nil
}

// Pass judges a value. It returns whether the check passed and, if not,
// why, in words that name the bound or expression.
func (j *Judge) Pass(c Check, value float64) (bool, string, error) {
	v := strconv.FormatFloat(value, 'g', 6, 64)
	if c.Min != nil && value < *c.Min {
		return false, fmt.Sprintf("%s is below the minimum %g", v, *c.Min), nil
	}
	if c.Max != nil && value > *c.Max {
		return false, fmt.Sprintf("%s is above the maximum %g", v, *c.Max), nil
	}
	if c.SuccessCondition != "" {
		ok, err := j.eval(c.SuccessCondition, value)
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, fmt.Sprintf("%s does not meet successCondition %q", v, c.SuccessCondition), nil
		}
	}
	if c.FailureCondition != "" {
		bad, err := j.eval(c.FailureCondition, value)
		if err != nil {
			return false, "", err
		}
		if bad {
			return false, fmt.Sprintf("%s meets failureCondition %q", v, c.FailureCondition), nil
		}
	}
	return true, "", nil
}

func (j *Judge) eval(e string, value float64) (bool, error) {
	p, err := j.program(e)
	if err != nil {
		return false, err
	}
	out, err := expr.Run(p, map[string]any{"result": value})
	if err != nil {
		return false, fmt.Errorf("evaluate %q with result=%g: %w", e, value, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q gave %T, want a boolean", e, out)
	}
	return b, nil
}

func (j *Judge) program(e string) (*vm.Program, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if p, ok := j.programs[e]; ok {
		return p, nil
	}
	p, err := expr.Compile(e, expr.Env(map[string]any{"result": 0.0}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", e, err)
	}
	j.programs[e] = p
	return p, nil
}
