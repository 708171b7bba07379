package vouch

import (
	"errors"
	"fmt"

	"oras.land/oras-go/v2/errdef"
)

// ErrNotFound is returned (wrapped) when a tag, manifest or blob does not
// exist. It is oras-go's sentinel, so errors from oras-go match it as well.
var ErrNotFound = errdef.ErrNotFound

// ErrLimitExceeded is matched (errors.Is) by every LimitError.
var ErrLimitExceeded = errors.New("limit exceeded")

// LimitError reports that content from outside went over one of vouch's
// bounds. Limit names the setting (for example "max-blob-bytes") so that a
// user knows which knob to turn.
type LimitError struct {
	// Limit is the name of the setting, as spelled in flags and config.
	Limit string
	// What names the thing that went over the limit.
	What string
	// Value is the size or count seen, or -1 when the count is open-ended.
	Value int64
	// Max is the configured bound.
	Max int64
}

// Error names the thing, its size or count when known, and the setting.
func (e *LimitError) Error() string {
	if e.Value < 0 {
		return fmt.Sprintf("%s exceeds the limit %s=%d", e.What, e.Limit, e.Max)
	}
	return fmt.Sprintf("%s is %d, over the limit %s=%d", e.What, e.Value, e.Limit, e.Max)
}

// Is makes errors.Is(err, ErrLimitExceeded) true for a LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrLimitExceeded }

// DigestMismatchError reports content whose digest is not the one that named
// it: a registry that lies, or a corrupted layout.
type DigestMismatchError struct {
	// Expected is the digest that named the content.
	Expected string
	// Actual is the digest of the content as read.
	Actual string
}

// Error names both digests.
func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: expected %s, content hashes to %s", e.Expected, e.Actual)
}
