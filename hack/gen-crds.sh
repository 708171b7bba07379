#!/usr/bin/env bash
# Generates, with controller-gen, the deepcopy functions of the types in
# vouch's custom resources (api/v1alpha1 and the config types its specs
# reuse: config, policy, trust, verifier/...) and the CRDs in deploy/crds,
# copied into the Helm chart's charts/vouch/crds (test/e2e's TestChartCRDs
# checks that they are the same).
# Run it after changing any of those types; api/v1alpha1's tests fail when
# the committed files are stale.
#
# controller-gen is built once into the testbed cache (hack/lib.sh), not
# pinned as a tool in go.mod: controller-tools v0.23.0 requires Kubernetes
# modules v0.37, which would raise vouch's own (v0.36, the versions the
# Gatekeeper frameworks dependency is tested with).
#
# Usage: hack/gen-crds.sh   (CONTROLLER_GEN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/.."

CONTROLLER_TOOLS_VERSION=v0.23.0
cache=${VOUCH_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vouch-testbed}
log() { printf 'gen-crds: %s\n' "$*" >&2; }
. hack/lib.sh

if [ -z "${CONTROLLER_GEN:-}" ]; then
  dir=$cache/tools/controller-gen-$CONTROLLER_TOOLS_VERSION
  build_tool "$dir" controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_TOOLS_VERSION"
  CONTROLLER_GEN=$dir/controller-gen
fi

"$CONTROLLER_GEN" object \
  paths=./api/... paths=./config paths=./policy paths=./trust paths=./verifier/...
rm -f deploy/crds/config.vouch.dev_*.yaml
"$CONTROLLER_GEN" crd paths=./api/... output:crd:artifacts:config=deploy/crds
rm -f charts/vouch/crds/config.vouch.dev_*.yaml
cp deploy/crds/config.vouch.dev_*.yaml charts/vouch/crds/
