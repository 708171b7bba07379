package kube

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/api/v1alpha1"
)

// Reasons of the Ready condition.
const (
	// ReasonApplied: the spec was validated, its references read, and the
	// configuration serves (Ready True).
	ReasonApplied = "Applied"
	// ReasonInvalidSpec: the spec fails vouch's validation; the message
	// names the field.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonInvalidReference: a referenced Secret or ConfigMap is missing,
	// may not be read, lacks the key or holds too much; the message names
	// the field and the object.
	ReasonInvalidReference = "InvalidReference"
	// ReasonBuildFailed: spec and references were read, but verifiers or
	// policy could not be built from them (a certificate that does not
	// parse, a trust policy naming a missing store); the message names the
	// field.
	ReasonBuildFailed = "BuildFailed"
)

// maxMessage is the longest condition message the API server accepts.
const maxMessage = 32768

// condition returns the Ready condition that err (nil: applied) calls
// for. Its message depends only on the spec and what was read, never on
// the replica (what it served before, when it started), so that replicas
// that see the same resources want the same status.
func condition(err error, applied string) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonApplied, Message: applied}
	if err == nil {
		return c
	}
	c.Status, c.Message = metav1.ConditionFalse, truncate(err.Error())
	var re *RefError
	var se *specError
	switch {
	case errors.As(err, &se):
		c.Reason = ReasonInvalidSpec
	case errors.As(err, &re):
		c.Reason = ReasonInvalidReference
	default:
		c.Reason = ReasonBuildFailed
	}
	return c
}

// specError marks a spec that fails validation.
type specError struct{ err error }

func (e *specError) Error() string { return e.err.Error() }
func (e *specError) Unwrap() error { return e.err }

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// upToDate reports whether st, the status of an object of generation
// gen, already says want about that generation.
func upToDate(st *v1alpha1.Status, gen int64, want metav1.Condition) bool {
	if st.ObservedGeneration != gen {
		return false
	}
	cur := meta.FindStatusCondition(st.Conditions, want.Type)
	return cur != nil && cur.Status == want.Status && cur.Reason == want.Reason &&
		cur.Message == want.Message && cur.ObservedGeneration == gen
}

// writeStatus makes obj's status (st, a field of obj) say want, through
// the status subresource, and only when it does not already: replicas
// that agree write nothing, so they never fight. The patch carries obj's
// resourceVersion (optimistic lock): when another replica wrote first, it
// fails with a conflict and the next check looks again.
// lastTransitionTime changes only when the condition's status does.
func writeStatus(ctx context.Context, c client.Client, obj client.Object, st *v1alpha1.Status, want metav1.Condition, owner string) (bool, error) {
	gen := obj.GetGeneration()
	want.ObservedGeneration = gen
	if upToDate(st, gen, want) {
		return false, nil
	}
	orig, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return false, fmt.Errorf("writing the status of %s: cannot copy %T", obj.GetName(), obj)
	}
	meta.SetStatusCondition(&st.Conditions, want)
	st.ObservedGeneration = gen
	patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
	if err := c.Status().Patch(ctx, obj, patch, client.FieldOwner(owner)); err != nil {
		return false, fmt.Errorf("writing the status of %s: %w", describe(obj), err)
	}
	return true, nil
}

// describe names obj in messages: "ClusterVouchConfig vouch", "VouchConfig
// team-a/strict".
func describe(obj client.Object) string {
	if _, ok := obj.(*v1alpha1.VouchConfig); ok {
		return "VouchConfig " + obj.GetNamespace() + "/" + obj.GetName()
	}
	return "ClusterVouchConfig " + obj.GetName()
}
