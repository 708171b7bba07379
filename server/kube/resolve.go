package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/trust"
)

// MaxObjects bounds the distinct Secrets and ConfigMaps one configuration
// references.
const MaxObjects = 256

// RefError says why a reference could not be read: its object is missing
// or may not be read, it has no such key, or its value is too large. Build
// errors wrap it under the field that holds the reference
// ("spec.verifiers[1].cosign.keys.refs[0]: secret vouch/cosign-pub has no
// key cosign.pub"); the ClusterVouchConfig's status then says
// InvalidReference.
type RefError struct {
	// Ref is the reference, its namespace filled in.
	Ref trust.Ref
	// Problem completes the sentence that starts with the object's name:
	// "not found", "has no key cosign.pub".
	Problem string
}

func (e *RefError) Error() string { return objectName(e.Ref) + " " + e.Problem }

// objectName names a reference's object: "secret vouch/cosign-pub".
func objectName(r trust.Ref) string {
	kind := "secret"
	if r.Kind == trust.KindConfigMap {
		kind = "configMap"
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

// objectKey identifies one Secret or ConfigMap.
type objectKey struct{ kind, namespace, name string }

func keyOf(r trust.Ref) objectKey { return objectKey{r.Kind, r.Namespace, r.Name} }

// object is what was read of one Secret or ConfigMap: the values of the
// keys that are referenced, or why it could not be read.
type object struct {
	data    map[string][]byte
	problem string
}

// resolver holds the referenced values of one read, in memory: it is the
// trust.Resolver a Build reads references through.
type resolver struct {
	namespace string // for references without one
	objects   map[objectKey]*object
	// problem, when set, is the answer to every Resolve: the references
	// were not read (a VouchConfig with too many).
	problem *RefError
	// tenant is set for a VouchConfig's references: a refused read then
	// points to the tenant's grant.
	tenant bool
}

// qualify fills in the namespace of a reference that names none.
func (r *resolver) qualify(ref trust.Ref) trust.Ref {
	if ref.Namespace == "" {
		ref.Namespace = r.namespace
	}
	return ref
}

// Resolve returns the value ref names, at most max bytes.
func (r *resolver) Resolve(ref trust.Ref, max int64) ([]byte, error) {
	if r.problem != nil {
		return nil, r.problem
	}
	ref = r.qualify(ref)
	o, ok := r.objects[keyOf(ref)]
	switch {
	case !ok:
		return nil, &RefError{Ref: ref, Problem: "was not read (a reference the Kubernetes source did not list: a bug)"}
	case o.problem != "":
		return nil, &RefError{Ref: ref, Problem: o.problem}
	}
	v, ok := o.data[ref.Key]
	switch {
	case !ok:
		return nil, &RefError{Ref: ref, Problem: "has no key " + ref.Key}
	case int64(len(v)) > max:
		return nil, &RefError{Ref: ref, Problem: fmt.Sprintf("key %s: more than %d bytes", ref.Key, max)}
	}
	return v, nil
}

// read GETs every object refs name (uncached: vouch reads no Secret it is
// not pointed at) and keeps the referenced keys. A missing object, or one
// vouch may not read, is recorded for Resolve to report; any other error
// (the API server unreachable) is returned: the read is not a verdict on
// the configuration.
func (r *resolver) read(ctx context.Context, c client.Reader, refs []trust.Ref) error {
	r.objects = map[objectKey]*object{}
	keys := map[objectKey][]string{}
	for _, ref := range refs {
		ref = r.qualify(ref)
		k := keyOf(ref)
		keys[k] = append(keys[k], ref.Key)
	}
	if len(keys) > MaxObjects {
		return &RefError{Ref: r.qualify(refs[0]), Problem: fmt.Sprintf("and %d other Secrets and ConfigMaps are referenced: more than %d", len(keys)-1, MaxObjects)}
	}
	for k, want := range keys {
		data, err := get(ctx, c, k)
		switch {
		case apierrors.IsNotFound(err):
			r.objects[k] = &object{problem: "not found"}
		case apierrors.IsForbidden(err):
			grant := "grant get on it to vouch's service account, see docs/kubernetes.md"
			if r.tenant {
				grant = "grant get and watch on it to vouch's service account with a Role in namespace " + k.namespace + " like deploy/rbac/tenant/role.yaml, see docs/kubernetes.md"
			}
			r.objects[k] = &object{problem: "may not be read by vouch (forbidden: " + grant + ")"}
		case err != nil:
			return fmt.Errorf("reading %s: %w", objectName(trust.Ref{Kind: k.kind, Namespace: k.namespace, Name: k.name}), err)
		default:
			o := &object{data: map[string][]byte{}}
			for _, key := range want {
				if v, ok := data[key]; ok {
					o.data[key] = v
				}
			}
			r.objects[k] = o
		}
	}
	return nil
}

// get reads one object's data: a Secret's data, a ConfigMap's data and
// binaryData.
func get(ctx context.Context, c client.Reader, k objectKey) (map[string][]byte, error) {
	key := client.ObjectKey{Namespace: k.namespace, Name: k.name}
	if k.kind == trust.KindSecret {
		var s corev1.Secret
		if err := c.Get(ctx, key, &s); err != nil {
			return nil, err
		}
		return s.Data, nil
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, key, &cm); err != nil {
		return nil, err
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	return data, nil
}

// fingerprint adds what was read to fp: for every referenced key, in a
// fixed order, the SHA-256 of its value or why it could not be read.
func (r *resolver) fingerprint(fp *trust.Fingerprinter) {
	type entry struct{ name, value string }
	var entries []entry
	for k, o := range r.objects {
		name := k.kind + " " + k.namespace + "/" + k.name
		if o.problem != "" {
			entries = append(entries, entry{name, "problem: " + o.problem})
			continue
		}
		for key, v := range o.data {
			sum := sha256.Sum256(v)
			entries = append(entries, entry{name + " key " + key, hex.EncodeToString(sum[:])})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for _, e := range entries {
		fp.Add(e.name, e.value)
	}
}

// watched lists the objects read, for watches by name.
func (r *resolver) watched() []objectKey {
	out := make([]objectKey, 0, len(r.objects))
	for k := range r.objects {
		out = append(out, k)
	}
	return out
}
