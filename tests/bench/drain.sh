#!/usr/bin/env bash
# Log-drain benchmark: a release `inlet serve` with the heroku-logplex connector on 127.0.0.1, loaded
# by the drain_bench example (a separate process) for a fixed time. Prints lines/s acknowledged, ack
# latency percentiles, and lines per CPU-second of the server process itself (from /proc), so the
# load generator's CPU is not counted. Stops by itself.
#
#   tests/bench/drain.sh [seconds] [senders] [frames] [interval_ms]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}; senders=${2:-128}; frames=${3:-100}; interval=${4:-100}

cargo build --release -q -p inlet-host --bin inlet --example drain_bench
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/inlet.toml" <<TOML
[lake]
url = "lake"

[connections.heroku]
connector = "heroku-logplex"
config = { dedupe_window = ${DEDUPE_WINDOW:-2048} }

[connections.heroku.drain]
basic_auth = "bench:bench"
commit_interval_ms = $interval
commit_bytes = 67108864
TOML
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/inlet serve "$work/inlet.toml" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }   # utime + stime, in clock ticks
before=$(cpu)
target/release/examples/drain_bench "$seconds" "$senders" "$frames" "$interval" "http://127.0.0.1:$port" | tee "$work/out"
after=$(cpu)
ticks=$(getconf CLK_TCK)
lines=$(awk '/lines acknowledged/ {print $3}' "$work/out")
python3 - "$lines" "$before" "$after" "$ticks" "$seconds" <<'PY'
import sys
lines, before, after, ticks, seconds = (float(x) for x in sys.argv[1:])
cpu = (after - before) / ticks
print(f"  server CPU: {cpu:.2f} s over {seconds:.0f} s ({cpu / seconds:.2f} cores); {lines / cpu:,.0f} lines per server CPU-second")
PY
