#!/usr/bin/env bash
# Installs the real programs vouch's tests run against (an OCI registry, the
# oras, notation, cosign (v2 and v3), crane and syft CLIs, controller-gen, Toxiproxy,
# helm, and through
# hack/cluster.sh a Kubernetes control plane with Gatekeeper) into a cache
# outside the repository, from the Go module proxy only; redis-server and
# Graphviz come from Debian's packages, installed only when missing. A second
# run finds them all in place and returns at once. Debian's openssl, for the
# OCSP responder of the notation tests, is installed the same way.
#
# Usage: hack/testbed.sh            install everything the tests use
#        hack/testbed.sh --print    also print the bin folder (for PATH)
set -euo pipefail

cache=${VOUCH_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vouch-testbed}
bin=$cache/bin
mkdir -p "$bin"

log() { printf 'testbed: %s\n' "$*" >&2; }

. "$(dirname "$0")/lib.sh"

# go_tool NAME PACKAGE VERSION: go install PACKAGE@VERSION as $bin/NAME.
go_tool() {
  build_tool "$cache/tools/$1-$3" "$1" "$2" "$3"
  ln -sfn "$cache/tools/$1-$3/$1" "$bin/$1"
}

# scratch_tool NAME PACKAGE VERSION: the same for modules whose version
# list the proxy refuses.
scratch_tool() {
  build_scratch_tool "$cache/tools/$1-$3" "$1" "$2" "$3"
  ln -sfn "$cache/tools/$1-$3/$1" "$bin/$1"
}

# Redis (Debian's redis-server) for the shared verification-result cache
# tests of cache/ and server/; they start their own redis-server on a free
# port. Installed only when missing (needs root); apt's output goes to
# stderr so that --print prints only the bin folder.
command -v redis-server >/dev/null || (apt-get update && apt-get install -y --no-install-recommends redis-server) >&2

# Graphviz (Debian's graphviz) for render's TestDOTGraphviz, which hands the
# DOT output to `dot`; that test fails under hack/test.sh when dot is
# missing. Installed only when missing, like redis-server.
command -v dot >/dev/null || (apt-get update && apt-get install -y --no-install-recommends graphviz) >&2

# OpenSSL (Debian's openssl) for verifier/notation's TestOCSP, whose OCSP
# responder (internal/testbed.OCSPResponder) has `openssl ocsp` sign every
# response. Installed only when missing, like graphviz.
command -v openssl >/dev/null || (apt-get update && apt-get install -y --no-install-recommends openssl) >&2

# The tools build in two lanes at once: a build alone leaves one of two
# cores idle while it downloads modules and links, and the cold testbed is
# most of a cold CI run. The lanes are balanced by their cold build times
# (the log says each one); each output line names its tool. On 2 cores with
# empty caches (2026-12-07): lane a 1592 s, lane b 1603 s, so the testbed
# takes about 27 minutes and the whole cold .ci/run about 50 (46 measured
# at d349466; with the key-vault SDKs, the Go part alone took 24 minutes
# at 9096f5d with the tools cached).
lane_a() {
  go_tool registry github.com/distribution/distribution/v3/cmd/registry v3.1.2
  go_tool oras oras.land/oras/cmd/oras v1.3.6
  scratch_tool notation github.com/notaryproject/notation/cmd/notation v1.3.2
  go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign v2.6.5
  # cosign v3 beside v2, as cosign3: what v3 pushes by default (Sigstore
  # bundles as OCI 1.1 referrers) for verifier/cosign's CLI tests; 332 s
  # cold in its lane.
  go_tool cosign3 github.com/sigstore/cosign/v3/cmd/cosign v3.1.3
  go_tool crane github.com/google/go-containerregistry/cmd/crane v0.22.1
  go_tool syft github.com/anchore/syft/cmd/syft v1.57.0
  # controller-gen, for api/v1alpha1's test that the generated CRDs and
  # deepcopy functions are up to date (hack/gen-crds.sh); ~20 s.
  go_tool controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen v0.23.0
  # Toxiproxy, the fault-injection TCP proxy that test/fault puts between
  # vouch and its registry and Redis; ~40 s.
  go_tool toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server v2.5.0
}
lane_b() {
  # helm, for test/e2e's chart tests (helm lint and helm template of
  # charts/vouch over a matrix of values); Helm 4, whose charts (apiVersion v2)
  # Helm 3 reads too; 423 s cold in its lane.
  go_tool helm helm.sh/helm/v4/cmd/helm v4.3.2
  # The Kubernetes control plane for test/e2e (etcd, kube-apiserver,
  # kubectl, the Gatekeeper manager and its CRDs), built into the same bin
  # folder by hack/cluster.sh: about 20 minutes on 2 cores the first time,
  # cached after. VOUCH_SKIP_CLUSTER=1 skips it (test/e2e then fails with
  # a hint).
  if [ "${VOUCH_SKIP_CLUSTER:-}" != 1 ]; then
    VOUCH_TESTBED_CACHE=$cache bash "$(dirname "${BASH_SOURCE[0]}")/cluster.sh" >&2
  fi
}
lane_a & a=$!
lane_b & b=$!
failed=0
wait "$a" || failed=1
wait "$b" || failed=1
if [ "$failed" = 1 ]; then
  log "a tool failed to build (its output is above)"
  exit 1
fi

if [ "${1:-}" = --print ]; then
  echo "$bin"
fi
