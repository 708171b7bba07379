#!/usr/bin/env bash
# Installs what the benchmarks run: the distribution registry, notation
# 1.3.2 and cosign 2.6.5 into the testbed cache that hack/testbed.sh uses
# (so each is built once for tests and benchmarks), Ratify v1.4.6 into a
# cache of its own, and gnuplot (Debian) for the plots. Only the Go module
# proxy and Debian's packages are used; a second run returns at once.
#
# Usage: bench/peers.sh     prints NAME=PATH for registry, notation, cosign, ratify
set -euo pipefail

testbed=${VOUCH_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vouch-testbed}
benchcache=${VOUCH_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vouch-bench}

log() { printf 'peers: %s\n' "$*" >&2; }

# go_tool NAME PACKAGE VERSION: go install PACKAGE@VERSION (the layout of
# hack/testbed.sh, so that either script finds the other's builds).
go_tool() {
  local name=$1 pkg=$2 version=$3 dir=$testbed/tools/$1-$3
  if [ ! -x "$dir/$name" ]; then
    log "building $name $version (first run only)"
    mkdir -p "$dir"
    GOBIN=$dir GOFLAGS=-buildvcs=false go install "$pkg@$version" >&2
    [ -x "$dir/$name" ] || mv "$dir/$(basename "$pkg")" "$dir/$name"
  fi
  echo "$name=$dir/$name"
}

# scratch_tool NAME DIR PACKAGE VERSION [MODULE@VERSION...]: for modules
# whose version list the proxy refuses ("go install pkg@version" fails):
# a scratch module with go get, then go build. Extra module versions are
# pinned in the same go get (Ratify needs a Gatekeeper frameworks version
# the checksum database knows).
scratch_tool() {
  local name=$1 dir=$2 pkg=$3 version=$4
  shift 4
  if [ ! -x "$dir/$name" ]; then
    log "building $name $version (first run only; Ratify takes ~10 minutes on 2 cores)"
    local work mod
    work=$(mktemp -d)
    mod=${pkg%%/cmd/*}
    (cd "$work" && go mod init example.com/tool >/dev/null 2>&1 &&
      go get "$@" "$mod@$version" >&2 &&
      go get -tool "$pkg" >&2 &&
      mkdir -p "$dir" && GOFLAGS=-buildvcs=false go build -o "$dir/$name" "$pkg" >&2)
    rm -rf "$work"
  fi
  echo "$name=$dir/$name"
}

go_tool registry github.com/distribution/distribution/v3/cmd/registry v3.1.2
scratch_tool notation "$testbed/tools/notation-v1.3.2" github.com/notaryproject/notation/cmd/notation v1.3.2
go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign v2.6.5
scratch_tool ratify "$benchcache/tools/ratify-v1.4.6" github.com/ratify-project/ratify/cmd/ratify v1.4.6 \
  github.com/open-policy-agent/frameworks/constraint@v0.0.0-20260616163050-e1eaa1bf6d62

if ! command -v gnuplot >/dev/null; then
  log "installing gnuplot-nox (Debian) for the plots"
  (apt-get update && apt-get install -y --no-install-recommends gnuplot-nox) >&2 || log "gnuplot could not be installed: plots are skipped"
fi
if ! command -v redis-server >/dev/null; then
  log "installing redis-server (Debian) for B4's shared cache"
  (apt-get update && apt-get install -y --no-install-recommends redis-server) >&2 || log "redis-server could not be installed"
fi
command -v gnuplot >/dev/null && echo "gnuplot=$(command -v gnuplot)"
command -v redis-server >/dev/null && echo "redis-server=$(command -v redis-server)"
exit 0
