// Package v1alpha1 holds the Go types of vouch's custom resources, API
// group config.vouch.dev, version v1alpha1 (docs/kubernetes.md):
// ClusterVouchConfig, cluster-scoped, whose spec is vouch's config file
// without its version (config.Spec), and VouchConfig, namespaced, whose
// spec is a tenant's trust stores, verifiers and policy
// (config.TenantSpec). Their specs are config's own types, decoded and
// validated by the same code as the file (config.Spec.Validate in the
// form of each kind); files are replaced by Secret and ConfigMap
// references (trust.Ref).
//
// The CRDs in deploy/crds and the deepcopy functions are generated from
// these types by controller-gen (hack/gen-crds.sh). This package links
// Kubernetes' apimachinery: the CLI does not import it (config reads the
// same manifests with its own decoder), only the server's controller will.
//
// +kubebuilder:object:generate=true
// +groupName=config.vouch.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vouch-project/vouch/config"
)

// GroupVersion is the group and version of these resources.
var GroupVersion = schema.GroupVersion{Group: config.Group, Version: "v1alpha1"}

// AddToScheme registers the resources' types with a scheme, as
// controller-runtime's client and manager need; it is not called at init.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&ClusterVouchConfig{}, &ClusterVouchConfigList{},
		&VouchConfig{}, &VouchConfigList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
