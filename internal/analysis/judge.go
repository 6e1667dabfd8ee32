package analysis

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/sluice-dev/sluice/api/v1alpha1"
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

// ConditionError is a success or failure condition that does not
// compile: a bad expression, an unknown name, or one that does not give a
// boolean.
type ConditionError struct {
	// Field is "successCondition" or "failureCondition".
	Field string
	// Expr is the expression as written.
	Expr string
	// Err is the compiler's complaint.
	Err error
}

func (e *ConditionError) Error() string {
	// The compiler's message, without the snippet it draws below it on
	// further lines: the expression is quoted already.
	msg, _, _ := strings.Cut(e.Err.Error(), "\n")
	return fmt.Sprintf("%s %q: %s", e.Field, e.Expr, msg)
}

func (e *ConditionError) Unwrap() error { return e.Err }

// Reason is the CamelCase reason a Canary reports it with:
// InvalidSuccessCondition or InvalidFailureCondition.
func (e *ConditionError) Reason() string {
	if e.Field == "failureCondition" {
		return v1alpha1.ReasonInvalidFailureCondition
	}
	return v1alpha1.ReasonInvalidSuccessCondition
}

// Validate compiles a check's expressions, so that a bad one is reported
// before any value is judged by it. It returns one ConditionError per
// expression that does not compile, the success condition first; none
// when both are good or empty.
func (j *Judge) Validate(c Check) []*ConditionError {
	var out []*ConditionError
	for _, f := range []struct{ name, expr string }{
		{"successCondition", c.SuccessCondition},
		{"failureCondition", c.FailureCondition},
	} {
		if f.expr == "" {
			continue
		}
		if _, err := j.compile(f.expr); err != nil {
			out = append(out, &ConditionError{Field: f.name, Expr: f.expr, Err: err})
		}
	}
	return out
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
	p, err := j.compile(e)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", e, err)
	}
	return p, nil
}

// compile compiles an expression once; programs are kept for the next
// rounds.
func (j *Judge) compile(e string) (*vm.Program, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if p, ok := j.programs[e]; ok {
		return p, nil
	}
	p, err := expr.Compile(e, expr.Env(map[string]any{"result": 0.0}), expr.AsBool())
	if err != nil {
		return nil, err
	}
	j.programs[e] = p
	return p, nil
}
