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

. "$(dirname "$0")/../hack/lib.sh"

# go_tool NAME PACKAGE VERSION: go install PACKAGE@VERSION into the
# testbed's cache (hack/testbed.sh builds the same tools there).
go_tool() {
  build_tool "$testbed/tools/$1-$3" "$1" "$2" "$3"
  echo "$1=$testbed/tools/$1-$3/$1"
}

# scratch_tool NAME DIR PACKAGE VERSION [MODULE@VERSION...]: the same for
# modules whose version list the proxy refuses, into DIR.
scratch_tool() {
  local name=$1 dir=$2
  shift 2
  build_scratch_tool "$dir" "$name" "$@"
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
