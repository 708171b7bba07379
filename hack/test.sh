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
# The Kubernetes source is linked only with -tags kubernetes (cmd/vouch/kubernetes.go).
go vet -tags kubernetes ./cmd/vouch
go build -tags kubernetes -o /dev/null ./cmd/vouch
# The Rego and CEL engines are linked only with -tags policycode
# (policy/engines.go), as the container image is built.
go vet -tags policycode ./policy/... ./config/... ./cmd/vouch
# The key-management providers (trust/kms: the AWS, Google Cloud, Azure and
# Vault clients) are linked only with -tags kms (cmd/vouch/keyvault_kms.go).
go vet -tags kms ./cmd/vouch
# The container image's set of tags (hack/image).
go build -tags kubernetes,policycode,kms -o /dev/null ./cmd/vouch

# A brief fuzzing pass over the parsers of outside input (VOUCH_FUZZTIME each;
# 0 skips). Longer runs: go test -run '^$' -fuzz '^NAME$' -fuzztime 5m PKG.
fuzztime=${VOUCH_FUZZTIME:-4s}
if [ "$fuzztime" != 0 ]; then
  while read -r pkg target; do
    echo "fuzz $pkg $target ($fuzztime)"
    if ! out=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
      # Go's fuzzer sometimes ends a run at its deadline with "context
      # deadline exceeded" and no failing input (a loaded machine, a
      # worker caught mid-minimisation): that is not a finding, so run
      # the target once more. A real failure writes its input and fails.
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "fuzz $pkg $target: ended at its deadline without a finding; once more"
        out=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" 2>&1) || { echo "$out" >&2; exit 1; }
      else
        echo "$out" >&2
        exit 1
      fi
    fi
  done <<'TARGETS'
. FuzzParseReference
. FuzzDockerReference
./verifier/sbom FuzzParseSPDX
./verifier/sbom FuzzParseCycloneDX
./verifier/sbom FuzzParseLicense
./verifier/sbom FuzzCompareVersion
./verifier/vulnreport FuzzParseSARIF
./verifier/vulnreport FuzzParseOpenVEX
./verifier/vulnreport FuzzParseCycloneDXVEX
./verifier/cosign FuzzParseBundle
./verifier/cosign FuzzParseSimpleSigning
./verifier/internal/intoto FuzzParse
./verifier/notation FuzzParseTrustPolicy
./verifier/notation FuzzPluginOutput
./verifier/plugin FuzzParseResponse
./internal/untrusted FuzzCheckJSONDepth
./trust FuzzParse
./trust/kms FuzzParseCertificateBundle
./server/preverify FuzzParseEnvelope
./server/preverify FuzzParseSubjects
./config FuzzParse
./config FuzzParseResources
./migrate/ratify FuzzConvert
./cache FuzzReport
./cache FuzzOpen
./store/registry FuzzParseDockerConfig
./server/admission FuzzImages
./audit FuzzReadManifests
./server/gatekeeper/fuzz FuzzProviderRequest
./server/gatekeeper/fuzz FuzzParseRequest
./policy/policytest FuzzParseSuite
./policy/policytest FuzzParseReports
./policy/code FuzzInput
TARGETS
  echo "fuzz: all targets passed"
fi

go test -count=1 -timeout 20m ./...
go test -count=1 -timeout 5m -tags kubernetes -run 'Kubernetes' ./cmd/vouch
go test -count=1 -timeout 10m -tags policycode ./policy/... ./config/...
go test -count=1 -timeout 10m -tags policycode -run 'Policy|Code' ./cmd/vouch
go test -count=1 -timeout 5m -tags kms -run 'KMS|KeyVault' ./cmd/vouch
