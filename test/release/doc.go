// Package release publishes vouch's own image the way a release does
// (hack/release-image.sh: the reproducible build of hack/image, oras, syft,
// notation and cosign, all real) to the testbed's registries, and checks
// with `vouch verify` that the published image is vouched for and that a
// changed or unsigned copy of it is not. It holds tests only; see
// docs/image.md.
package release
