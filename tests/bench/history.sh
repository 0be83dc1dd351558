#!/usr/bin/env bash
# History benchmark: a release `inlet serve` (heroku-logplex, a full 2048-id dedupe window of
# Logplex-like 32-hex frame ids) loaded by drain_bench until it made `commits` more commits.
# Prints the server's RSS growth over those commits, the average manifest and snapshot size, and
# restart-to-ready (process start until /healthz answers, every drain opened from the lake). Then
# history_bench times opening a connection with 100,000 commits. Stops by itself; asserts nothing.
#
#   tests/bench/history.sh [commits] [senders] [interval_ms] [history_commits]
set -euo pipefail
cd "$(dirname "$0")/../.."
commits=${1:-3000}; senders=${2:-16}; interval=${3:-20}; history=${4:-100000}

cargo build --release -q -p inlet-host --bin inlet --example drain_bench --example history_bench
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/inlet.toml" <<TOML
[lake]
url = "lake"

[connections.heroku]
connector = "heroku-logplex"

[connections.heroku.drain]
basic_auth = "bench:bench"
commit_interval_ms = $interval
commit_bytes = 67108864
TOML
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export INLET_CACHE_DIR="$work/cache"
start() {
  target/release/inlet serve "$work/inlet.toml" --listen "127.0.0.1:$port" 2>>"$work/serve.log" &
  server=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.02; done
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
count() { find "$work/lake/heroku/_commits" -name '*.json' 2>/dev/null | wc -l; }
load() { target/release/examples/drain_bench "$1" "$senders" 100 "$interval" "http://127.0.0.1:$port" >/dev/null; }

start
load 3   # warm up: the instance is built, the window fills
rss0=$(rss_kb); c0=$(count)
while [ $(( $(count) - c0 )) -lt "$commits" ]; do load 10; done
rss1=$(rss_kb); c1=$(count)
kill -TERM "$server"; wait "$server" || true
t0=$(date +%s.%N); start; t1=$(date +%s.%N)
kill -TERM "$server"; wait "$server" || true; server=""
python3 - "$work/lake/heroku" "$rss0" "$rss1" "$c0" "$c1" "$t0" "$t1" <<'PY'
import os, sys
lake, rss0, rss1, c0, c1, t0, t1 = sys.argv[1], *map(float, sys.argv[2:])
def sizes(folder):
    path = os.path.join(lake, folder)
    return [os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)] if os.path.isdir(path) else []
manifests, snapshots = sizes("_commits"), sizes("_snapshots")
avg = lambda xs: sum(xs) / max(len(xs), 1)
print(f"history_bench (serve): {c1 - c0:.0f} commits after warm-up ({c1:.0f} in all)")
print(f"  server RSS:        {rss0 / 1024:.1f} MB -> {rss1 / 1024:.1f} MB (+{(rss1 - rss0) / 1024:.1f} MB)")
print(f"  manifests:         {len(manifests)}, average {avg(manifests) / 1024:.1f} KiB, largest {max(manifests) / 1024:.1f} KiB")
print(f"  snapshots:         {len(snapshots)}, average {avg(snapshots) / 1024:.1f} KiB")
print(f"  restart-to-ready:  {t1 - t0:.2f} s")
PY
target/release/examples/history_bench "$history" 2048 20
