#!/usr/bin/env bash
# The whole test suite: installs the real parts the tests use (hack/testbed.sh,
# cached outside the repository), then checks formatting, vets and runs every
# test against real registries on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(bash hack/testbed.sh --print)
export VOUCH_TESTBED_BIN=$bin
export PATH=$bin:$PATH

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 20m ./...
