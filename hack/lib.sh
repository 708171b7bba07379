# Shell functions that hack/testbed.sh and bench/peers.sh share, so that
# both build a tool the same way into the same cache layout and each finds
# the other's builds. Source it after defining log().

# build_tool DIR NAME PACKAGE VERSION: go install PACKAGE@VERSION as
# DIR/NAME, unless it is there already.
build_tool() {
  local dir=$1 name=$2 pkg=$3 version=$4
  [ -x "$dir/$name" ] && return 0
  log "building $name $version (first run only)"
  local start=$SECONDS
  mkdir -p "$dir"
  GOBIN=$dir GOFLAGS=-buildvcs=false go install "$pkg@$version" >&2
  [ -x "$dir/$name" ] || mv "$dir/$(basename "$pkg")" "$dir/$name"
  log "built $name $version in $((SECONDS - start)) s"
}

# build_scratch_tool DIR NAME PACKAGE VERSION [MODULE@VERSION...]: for
# modules whose version list the proxy refuses ("go install pkg@version"
# fails): go get in a scratch module, then go build, as DIR/NAME, unless it
# is there already. Extra module versions are pinned in the same go get
# (Ratify needs a Gatekeeper frameworks version the checksum database knows).
build_scratch_tool() {
  local dir=$1 name=$2 pkg=$3 version=$4
  shift 4
  [ -x "$dir/$name" ] && return 0
  log "building $name $version (first run only)"
  local start=$SECONDS work mod=${pkg%%/cmd/*}
  work=$(mktemp -d)
  (cd "$work" && go mod init example.com/tool >/dev/null 2>&1 &&
    go get "$@" "$mod@$version" >&2 &&
    go get -tool "$pkg@$version" >&2 &&
    mkdir -p "$dir" && GOFLAGS=-buildvcs=false go build -o "$dir/$name" "$pkg" >&2)
  local rc=$?
  rm -rf "$work"
  [ $rc = 0 ] && log "built $name $version in $((SECONDS - start)) s"
  return $rc
}
