// Package duration holds Duration, the time.Duration of vouch's config file:
// written as a Go duration string ("2s", "1m30s"), never negative.
package duration

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as a string ("2s", "1m30s").
//
// +kubebuilder:validation:Type=string
type Duration struct{ time.Duration }

// UnmarshalJSON reads "2s"-style strings; a negative duration is an error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected a duration such as \"2s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// DeepCopyInto copies d into out, as Kubernetes' generated code expects of
// the types in vouch's custom resources.
func (d *Duration) DeepCopyInto(out *Duration) { *out = *d }

// DeepCopy returns a copy of d, as Kubernetes' generated code expects of
// the types in vouch's custom resources.
func (d *Duration) DeepCopy() *Duration {
	if d == nil {
		return nil
	}
	out := *d
	return &out
}
