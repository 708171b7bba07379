package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vouch-project/vouch/config"
)

// ConditionReady is the condition type that says whether vouch serves a
// resource's configuration: True when it was validated, its references
// read and it is in effect; False with a reason and a message naming the
// field otherwise.
const ConditionReady = "Ready"

// ClusterVouchConfigSpec is vouch's config file without its version: the
// registries, limits, trust stores, verifiers and policy of every
// namespace. Trust material is named by Secret and ConfigMap references
// (any namespace; default vouch's own) or held inline, never by files.
type ClusterVouchConfigSpec struct {
	config.Spec `json:",inline"`
}

// VouchConfigSpec is a tenant's configuration: trust stores, verifiers and
// a policy that add requirements to admission requests in the resource's
// own namespace. It has no registries or limits (those are the cluster's),
// and its references read its own namespace only.
type VouchConfigSpec struct {
	config.TenantSpec `json:",inline"`
}

// Status is what vouch says about a resource.
type Status struct {
	// ObservedGeneration is the generation of the spec that Conditions
	// describe. Optional.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions hold the Ready condition. Optional.
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ClusterVouchConfig is vouch's configuration for the whole cluster, owned
// by the cluster admin.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=cvc;cvouch,categories=vouch
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterVouchConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the configuration. Required.
	Spec ClusterVouchConfigSpec `json:"spec"`
	// Status is written by vouch. Optional.
	Status Status `json:"status,omitempty"`
}

// ClusterVouchConfigList is a list of ClusterVouchConfigs.
//
// +kubebuilder:object:root=true
type ClusterVouchConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterVouchConfig `json:"items"`
}

// VouchConfig is a tenant's configuration: requirements added in its
// namespace, never relaxing the cluster's.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=vc;vouch,categories=vouch
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VouchConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the tenant's configuration. Required.
	Spec VouchConfigSpec `json:"spec"`
	// Status is written by vouch. Optional.
	Status Status `json:"status,omitempty"`
}

// VouchConfigList is a list of VouchConfigs.
//
// +kubebuilder:object:root=true
type VouchConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VouchConfig `json:"items"`
}

// Validate checks the spec as vouch serves it: config.Spec.Validate in the
// cluster form, errors naming fields below "spec.". References are checked
// for their shape, not read.
func (c *ClusterVouchConfig) Validate() error {
	return c.Spec.Spec.Validate(config.FormCluster, "spec.")
}

// Validate checks the spec as vouch serves it: config.TenantSpec.Validate
// in the tenant form, errors naming fields below "spec.".
func (c *VouchConfig) Validate() error {
	return c.Spec.TenantSpec.Validate(config.FormTenant, "spec.")
}
