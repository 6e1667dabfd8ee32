package v1alpha1

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cbor "k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
)

// Timestamp is a point in time kept to the microsecond, for the status
// fields that time a release (when a step started, when a route was first
// read back, when the last check round counted). metav1.Time keeps whole
// seconds: a pause timed from a truncated start ended up to a second early,
// so a 5 s pause lasted between 4 and 5 s.
//
// It embeds metav1.MicroTime, so equality.Semantic compares it and its
// MarshalJSON and MarshalCBOR write six fractional digits. Its own
// UnmarshalJSON and UnmarshalCBOR read them with or without the fraction:
// a status written by an older Sluice (whole seconds) still decodes, which
// MicroTime's decoders refuse.
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:Format=date-time
// +kubebuilder:object:generate=false
type Timestamp struct {
	metav1.MicroTime `json:"-"`
}

// NewTimestamp returns t, to the microsecond, as a *Timestamp: what is
// kept in memory equals what a write and a read give back.
func NewTimestamp(t time.Time) *Timestamp {
	return &Timestamp{MicroTime: metav1.NewMicroTime(t.Truncate(time.Microsecond))}
}

// DeepCopyInto copies t into out; time.Time is a value.
func (t *Timestamp) DeepCopyInto(out *Timestamp) { *out = *t }

// DeepCopy returns a copy of t.
func (t *Timestamp) DeepCopy() *Timestamp {
	if t == nil {
		return nil
	}
	out := *t
	return &out
}

// UnmarshalJSON reads RFC 3339, with or without a fraction of a second.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Timestamp{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: want an RFC 3339 string: %w", err)
	}
	return t.parse(s)
}

func (t *Timestamp) parse(s string) error {
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", s, err)
	}
	t.MicroTime = metav1.NewMicroTime(parsed.Local())
	return nil
}

// UnmarshalCBOR reads what UnmarshalJSON reads (MicroTime's own would
// refuse whole seconds).
func (t *Timestamp) UnmarshalCBOR(b []byte) error {
	var s *string
	if err := cbor.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: want an RFC 3339 string: %w", err)
	}
	if s == nil {
		*t = Timestamp{}
		return nil
	}
	return t.parse(*s)
}

// ToUnstructured gives the string form to the unstructured converter
// (server-side apply, unstructured clients).
func (t Timestamp) ToUnstructured() any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(metav1.RFC3339Micro)
}
