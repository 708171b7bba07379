#!/usr/bin/env bash
# Publishes vouch's container image and vouches for it: builds the
# reproducible multi-arch image into an OCI layout (go run ./hack/image, no
# Docker), pushes it with oras, makes an SPDX JSON SBOM of its files with
# syft and attaches it to the image index as an OCI 1.1 referrer (oras
# attach), then signs the index and the SBOM with notation and with cosign
# (key-based). docs/image.md says how to verify the result with vouch.
#
# Usage: hack/release-image.sh [options] REPOSITORY
#
#   REPOSITORY            where to publish, without a tag: the chart's default
#                         image is ghcr.io/vouch-project/vouch
#   --version V           the tag and vouch's version (default: the appVersion
#                         of charts/vouch/Chart.yaml, which the chart deploys)
#   --plain-http          the registry speaks plain HTTP (tests only)
#   --work DIR            keep the layout, the SBOM and the files scanned here
#                         (default: a temporary folder, removed at the end)
#   --notation-key NAME   notation's signing key, by its name in notation's
#                         configuration (default: $VOUCH_NOTATION_KEY, else
#                         notation's default key)
#   --cosign-key KEY      cosign's private key: a file or a KMS URI cosign
#                         understands (default: $VOUCH_COSIGN_KEY; required).
#                         Its password is read from COSIGN_PASSWORD.
#   --cosign-tlog         also record cosign's signatures in the transparency
#                         log (default: off; the signatures are key-based and
#                         verified against the public key)
#   --force               push even when the tag names another index already
#                         (by default a release tag is never moved)
#
# Needs go, oras, notation, cosign (v2 or v3) and syft on PATH; registry
# credentials are the ones those tools read (docker's config.json). It
# prints the pinned reference REPOSITORY@sha256:... of the index on stdout,
# and what it does on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'release-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

version="" plain=false work="" tlog=false force=false
notation_key=${VOUCH_NOTATION_KEY:-}
cosign_key=${VOUCH_COSIGN_KEY:-}
repo=""
while [ $# -gt 0 ]; do
  case $1 in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --plain-http) plain=true; shift ;;
    --work) work=${2:?--work needs a folder}; shift 2 ;;
    --notation-key) notation_key=${2:?--notation-key needs a name}; shift 2 ;;
    --cosign-key) cosign_key=${2:?--cosign-key needs a key}; shift 2 ;;
    --cosign-tlog) tlog=true; shift ;;
    --force) force=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$repo" ] || die "one REPOSITORY only (got $repo and $1)"; repo=$1; shift ;;
  esac
done
[ -n "$repo" ] || die "usage: hack/release-image.sh [options] REPOSITORY (for example ghcr.io/vouch-project/vouch)"
case $repo in *@*) die "REPOSITORY $repo: give it without a tag or digest" ;; esac
case ${repo##*/} in *:*) die "REPOSITORY $repo: give it without a tag or digest" ;; esac
[ -n "$cosign_key" ] || die "no cosign key: pass --cosign-key or set VOUCH_COSIGN_KEY"
for tool in go oras notation cosign syft; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH (hack/testbed.sh installs it)"
done

if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)

# 1. Build. The commit is recorded only for a clean checkout: a build with
#    changes not committed is not that commit.
revision=""
if git rev-parse --verify -q HEAD >/dev/null 2>&1 && [ -z "$(git status --porcelain 2>/dev/null)" ]; then
  revision=$(git rev-parse HEAD)
fi
[ -n "$version" ] || version=$(go run ./hack/image --print-version)
build=(go run ./hack/image --layout "$work/layout" --rootfs "$work/rootfs" --version "$version")
[ -n "$revision" ] && build+=(--revision "$revision")
log "building the image (${revision:-no revision: uncommitted changes or no git})"
digest=$("${build[@]}")
[[ $digest == sha256:* ]] || die "hack/image printed $digest, not a digest"
log "index $digest, tag $version"

# 2. Push the layout: the same bytes, so the same digest.
oras_plain=() notation_plain=() cosign_plain=()
if $plain; then
  oras_plain=(--plain-http) notation_plain=(--insecure-registry) cosign_plain=(--allow-http-registry)
fi
to_plain=()
$plain && to_plain=(--to-plain-http)
# A release tag names one index for good: never move it to another.
if existing=$(oras resolve "${oras_plain[@]}" "$repo:$version" 2>/dev/null) && [ "$existing" != "$digest" ]; then
  $force || die "$repo:$version is $existing already, not this build's $digest (--force moves the tag)"
  log "moving $repo:$version from $existing (--force)"
fi
log "pushing $repo:$version"
oras cp "${to_plain[@]}" --from-oci-layout "$work/layout:$version" "$repo:$version" >&2
pushed=$(oras resolve "${oras_plain[@]}" "$repo:$version")
[ "$pushed" = "$digest" ] || die "$repo:$version is $pushed after the push, not $digest"
subject=$repo@$digest

# 3. The SBOM: syft over every platform's files (the binaries' Go modules),
#    attached to the index.
log "making the SBOM (syft)"
SYFT_CHECK_FOR_APP_UPDATE=false syft scan "dir:$work/rootfs" -q \
  --source-name "$repo" --source-version "$version" -o "spdx-json=$work/sbom.spdx.json"
(cd "$work" && oras attach "${oras_plain[@]}" --artifact-type application/spdx+json \
  --export-manifest sbom-manifest.json "$subject" sbom.spdx.json:application/spdx+json >&2)
sbom=$repo@sha256:$(sha256sum "$work/sbom-manifest.json" | cut -d' ' -f1)
log "SBOM $sbom"

# 4. Signatures on the index and on the SBOM.
notation_args=(sign "${notation_plain[@]}")
[ -n "$notation_key" ] && notation_args+=(--key "$notation_key")
cosign_args=(sign --yes --key "$cosign_key" "${cosign_plain[@]}")
cosign_env=()
case $(cosign version 2>&1 | sed -n 's/^GitVersion: *v\{0,1\}\([0-9]*\).*/\1/p') in
  2)
    # cosign 2 puts signatures in sha256-<hex>.sig tags, which are looked
    # up for the image only: as OCI 1.1 referrers, the SBOM's signature is
    # found too.
    cosign_env=(COSIGN_EXPERIMENTAL=1)
    cosign_args+=(--registry-referrers-mode=oci-1-1)
    $tlog || cosign_args+=(--tlog-upload=false)
    ;;
  3)
    # cosign 3 pushes Sigstore bundles as OCI 1.1 referrers.
    $tlog || cosign_args+=(--use-signing-config=false --tlog-upload=false)
    ;;
  *) die "cosign $(cosign version 2>&1 | sed -n 's/^GitVersion: *//p'): want v2 or v3" ;;
esac
for ref in "$subject" "$sbom"; do
  log "signing $ref (notation, cosign)"
  notation "${notation_args[@]}" "$ref" >&2
  env "${cosign_env[@]}" cosign "${cosign_args[@]}" "$ref" >&2
done

echo "$subject"
