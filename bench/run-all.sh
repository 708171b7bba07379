#!/usr/bin/env bash
# Runs B1–B5 one after the other and writes their tables to
# bench/results/<date>.md, and B5's plots to docs/performance/. Takes about
# half an hour on 2 cores (B4 alone replays 4 × 10,000 pods at 50/s).
#
# Usage: bench/run-all.sh [results-file]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/$(date -u +%F).md}
mkdir -p "$(dirname "$out")"
{
  echo "# vouch benchmarks, $(date -u +%F)"
  echo
  echo "Produced by \`bench/run-all.sh\` at commit $(git rev-parse --short=12 HEAD) on a machine with nproc $(nproc); each section says its exact command and the load average around it."
  echo
} >"$out"
for b in b1 b2 b3 b4 b5; do
  echo "bench/run-all.sh: $b" >&2
  args=()
  [ "$b" = b2 ] && args=(-trace)
  go run "./bench/$b" "${args[@]}" >>"$out"
  echo >>"$out"
done
echo "bench/run-all.sh: wrote $out" >&2
