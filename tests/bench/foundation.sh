#!/usr/bin/env bash
# Benchmark of the foundation: connector start (cold vs warm) and sample-connector throughput
# into a local lake, with peak RSS. Prints figures; asserts nothing. Not part of the test suite.
#
#   tests/bench/foundation.sh [ROWS]      (ROWS patients; consultations x2 and orders x3 follow)
set -euo pipefail
cd "$(dirname "$0")/../.."
patients=${1:-1000000}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release -p inlet-host --bin inlet --example start_bench
echo "== connector start"
target/release/examples/start_bench
echo "== sample connector into a local lake (${patients} patients, $((patients * 6)) rows in all)"
lake=$(mktemp -d)
cache=$(mktemp -d)
trap 'rm -rf "$lake" "$cache"' EXIT
# Warm the compile cache so the figure is the sync, not the compilation.
INLET_CACHE_DIR=$cache target/release/inlet spec sample >/dev/null
INLET_CACHE_DIR=$cache /usr/bin/time -v target/release/inlet sync sample --to "$lake" \
  --set patients="$patients" --set batch_rows=16384 2> "$lake.log" || { cat "$lake.log"; exit 1; }
grep -E '^\S+ +(patients|consultations|orders|\(total\))' "$lake.log"
wall=$(grep 'Elapsed (wall clock)' "$lake.log" | awk '{print $NF}')
rss=$(grep 'Maximum resident set size' "$lake.log" | awk '{print $NF}')
rows=$((patients * 6))
seconds=$(python3 -c "p='$wall'.split(':'); print(sum(float(x) * 60 ** i for i, x in enumerate(reversed(p))))")
python3 -c "print(f'rows: $rows  wall: {float($seconds):.2f} s  rows/s: {$rows / float($seconds):,.0f}  peak RSS: {$rss / 1024:.0f} MiB')"
du -sh "$lake" | awk '{print "lake size: " $1}'
rm -f "$lake.log"
