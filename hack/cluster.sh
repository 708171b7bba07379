#!/usr/bin/env bash
# Builds the Kubernetes control plane that test/e2e runs vouch serve behind:
# etcd, kube-apiserver, kubectl and the OPA Gatekeeper manager (with its
# CRDs), from the Go module proxy only, into the testbed's bin folder (the
# cache outside the repository that hack/testbed.sh fills). Each program is
# built once; a second run finds them cached and returns at once.
#
# Usage: hack/cluster.sh            build what is missing
#        hack/cluster.sh --print    also print the bin folder
#
# Cold: 33 CPU-minutes, about 20 minutes on 2 idle cores (kube-apiserver and
# kubectl take most of it), and 7 GB of Go caches; see docs/serving.md,
# "End-to-end test".
set -euo pipefail

K8S_VERSION=${VOUCH_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${VOUCH_ETCD_VERSION:-v3.6.16}
GATEKEEPER_VERSION=${VOUCH_GATEKEEPER_VERSION:-v3.23.1}

cache=${VOUCH_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vouch-testbed}
bin=$cache/bin
tools=$cache/tools
mkdir -p "$bin" "$tools"

log() { printf 'cluster: %s\n' "$*" >&2; }

# Scratch folders, removed on exit.
scratch_dirs=()
cleanup() { [ ${#scratch_dirs[@]} -eq 0 ] || rm -rf "${scratch_dirs[@]}"; }
trap cleanup EXIT
workdir() {
  work=$(mktemp -d)
  scratch_dirs+=("$work")
}

# timed NAME COMMAND...: runs COMMAND, logging how long it took.
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  log "$name built in $((SECONDS - start))s"
}

# scratch WORK: a module to build tools from (the proxy refuses some modules'
# version lists, so "go install pkg@version" is not always possible).
scratch() {
  (cd "$1" && go mod init example.com/vouch-testbed >/dev/null 2>&1)
}

# etcd, from its server module (the same recipe as notation in testbed.sh).
build_etcd() {
  local dir=$1 work
  workdir
  scratch "$work"
  (cd "$work" && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" 2>"$work/get.log" &&
    mkdir -p "$dir" && GOFLAGS=-buildvcs=false go build -trimpath -o "$dir/etcd" go.etcd.io/etcd/server/v3) ||
    { cat "$work/get.log" >&2; return 1; }
}

# kube-apiserver and kubectl. "go install k8s.io/kubernetes/cmd/...@version"
# fails: k8s.io/kubernetes replaces its staging modules (k8s.io/api,
# k8s.io/client-go, ...) with folders of its own repository. A wrapper module
# requires k8s.io/kubernetes and replaces each staging module with its
# published v0.Y.Z, or with an empty module where none is published (the
# programs built here do not import those).
build_kube() {
  local dir=$1 work gomod minor staging
  workdir
  minor=${K8S_VERSION#v1.}
  staging=v0.$minor
  gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  {
    echo "module example.com/vouch-testbed/kubernetes"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kubectl"
    echo ")"
    echo
    echo "replace ("
    local name
    for name in $(sed -n 's|^[[:space:]]*k8s.io/\([^ ]*\) => ./staging/src/.*|\1|p' "$gomod"); do
      if (cd "$work" && go mod download "k8s.io/$name@$staging" >/dev/null 2>&1); then
        echo "	k8s.io/$name => k8s.io/$name $staging"
      else
        mkdir -p "$work/empty/$name"
        echo "module k8s.io/$name" >"$work/empty/$name/go.mod"
        echo "	k8s.io/$name => ./empty/$name"
      fi
    done
    echo ")"
  } >"$work/go.mod.new"
  mv "$work/go.mod.new" "$work/go.mod"
  local major=${K8S_VERSION#v}
  major=${major%%.*}
  minor=${minor%%.*}
  local ldflags=""
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$work" && go mod tidy 2>"$work/tidy.log") || { cat "$work/tidy.log" >&2; return 1; }
  mkdir -p "$dir.tmp"
  (cd "$work" && GOFLAGS=-buildvcs=false go build -trimpath -ldflags "$ldflags" -o "$dir.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

# The Gatekeeper manager, and the CRDs of its Helm chart (plain YAML, not
# templated) from the same module.
build_gatekeeper() {
  local dir=$1 src
  mkdir -p "$dir.tmp"
  GOBIN=$dir.tmp GOFLAGS=-buildvcs=false go install "github.com/open-policy-agent/gatekeeper/v3@$GATEKEEPER_VERSION"
  [ -x "$dir.tmp/gatekeeper" ] || mv "$dir.tmp/v3" "$dir.tmp/gatekeeper"
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/open-policy-agent/gatekeeper/v3@$GATEKEEPER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$dir.tmp/crds"
  cp "$src"/manifest_staging/charts/gatekeeper/crds/*.yaml "$dir.tmp/crds/"
  chmod -R u+w "$dir.tmp/crds"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

dir=$tools/etcd-$ETCD_VERSION
if [ ! -x "$dir/etcd" ]; then
  log "building etcd $ETCD_VERSION (first run only)"
  timed etcd build_etcd "$dir"
fi
ln -sfn "$dir/etcd" "$bin/etcd"

dir=$tools/kubernetes-$K8S_VERSION
if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/kubectl" ]; then
  log "building kube-apiserver and kubectl $K8S_VERSION (first run only, several minutes)"
  timed "kube-apiserver and kubectl" build_kube "$dir"
fi
ln -sfn "$dir/kube-apiserver" "$bin/kube-apiserver"
ln -sfn "$dir/kubectl" "$bin/kubectl"

dir=$tools/gatekeeper-$GATEKEEPER_VERSION
if [ ! -x "$dir/gatekeeper" ] || [ ! -d "$dir/crds" ]; then
  log "building gatekeeper $GATEKEEPER_VERSION (first run only)"
  timed gatekeeper build_gatekeeper "$dir"
fi
ln -sfn "$dir/gatekeeper" "$bin/gatekeeper"
ln -sfn "$dir/crds" "$bin/gatekeeper-crds"

if [ "${1:-}" = --print ]; then
  echo "$bin"
fi
