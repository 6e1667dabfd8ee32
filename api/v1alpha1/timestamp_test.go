package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	cbor "k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
)

func TestTimestampKeepsMicroseconds(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 30, 5, 734_912_345, time.UTC)
	st := CanaryStatus{StepStartedAt: NewTimestamp(at), RouteSettling: &RouteSettling{CanaryWeight: 10, Since: *NewTimestamp(at)}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"stepStartedAt":"2026-11-24T12:30:05.734912Z"`) {
		t.Fatalf("written as %s, want microseconds in UTC", b)
	}
	var back CanaryStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := at.Truncate(time.Microsecond)
	if !back.StepStartedAt.Time.Equal(want) || !back.RouteSettling.Since.Time.Equal(want) {
		t.Fatalf("read back %v and %v, want %v", back.StepStartedAt, back.RouteSettling.Since, want)
	}
	// A 5 s pause from the read-back start ends 5 s after the real start
	// to the microsecond; with metav1.Time it ended 0.73 s early.
	if end := back.StepStartedAt.Add(5 * time.Second); at.Add(5*time.Second).Sub(end) >= time.Microsecond {
		t.Fatalf("pause ends at %v, want %v", end, at.Add(5*time.Second))
	}
}

func TestTimestampReadsOtherForms(t *testing.T) {
	for in, want := range map[string]time.Time{
		// What metav1.Time wrote: a status from before the change.
		`"2026-11-24T12:30:05Z"`:           time.Date(2026, 11, 24, 12, 30, 5, 0, time.UTC),
		`"2026-11-24T13:30:05.5+01:00"`:    time.Date(2026, 11, 24, 12, 30, 5, 500_000_000, time.UTC),
		`"2026-11-24T12:30:05.123456789Z"`: time.Date(2026, 11, 24, 12, 30, 5, 123_456_789, time.UTC),
		`null`:                             {},
	} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(in), &ts); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !ts.Time.Equal(want) {
			t.Errorf("%s: read %v, want %v", in, ts.Time, want)
		}
	}
	for _, bad := range []string{`"yesterday"`, `"2026-11-24"`, `12`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("%s: read as %v, want an error", bad, ts.Time)
		}
	}
}

func TestTimestampUnstructured(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 30, 5, 250_000_000, time.UTC)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&CanaryStatus{StepStartedAt: NewTimestamp(at)})
	if err != nil {
		t.Fatal(err)
	}
	if got := u["stepStartedAt"]; got != "2026-11-24T12:30:05.250000Z" {
		t.Fatalf("unstructured stepStartedAt = %#v", got)
	}
	var back CanaryStatus
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, &back); err != nil {
		t.Fatal(err)
	}
	if !back.StepStartedAt.Time.Equal(at) {
		t.Fatalf("from unstructured: %v, want %v", back.StepStartedAt, at)
	}
	if _, ok := u["lastCheckTime"]; ok {
		t.Fatalf("a nil Timestamp was written: %v", u)
	}
}

// CBOR reads the same forms as JSON (metav1.MicroTime's own CBOR decoder
// refuses whole seconds) and writes microseconds.
func TestTimestampCBOR(t *testing.T) {
	old, err := cbor.Marshal("2026-11-24T12:30:05Z")
	if err != nil {
		t.Fatal(err)
	}
	var ts Timestamp
	if err := ts.UnmarshalCBOR(old); err != nil {
		t.Fatalf("whole seconds from CBOR: %v", err)
	}
	at := time.Date(2026, 11, 24, 12, 30, 5, 0, time.UTC)
	if !ts.Time.Equal(at) {
		t.Fatalf("read %v, want %v", ts.Time, at)
	}
	b, err := NewTimestamp(at.Add(250 * time.Microsecond)).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := cbor.Unmarshal(b, &s); err != nil || s != "2026-11-24T12:30:05.000250Z" {
		t.Fatalf("written as %q (%v)", s, err)
	}
	null, err := Timestamp{}.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	back := *NewTimestamp(at)
	if err := back.UnmarshalCBOR(null); err != nil || !back.IsZero() {
		t.Fatalf("null read as %v (%v)", back.Time, err)
	}
}
