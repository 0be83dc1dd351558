#!/usr/bin/env bash
# Benchmark (../shared/bench/README.md): TPC-H lineitem SF1 from PostgreSQL to Parquet.
# Compares, on this machine, the one-connection limit (psql COPY text/binary to /dev/null),
# ConnectorX + pyarrow (1 and 2 partitions) and Inlet's postgres connector into a local lake.
# Prints, over RUNS rounds after a warm-up, each case's median wall and CPU time, the server's CPU
# for it, its peak RSS, and the median of its per-round ratio to COPY text (and ConnectorX).
# Asserts nothing.
#
#   tests/bench/postgres_lineitem.sh [RUNS]        (SKIP_CONNECTORX=1 leaves ConnectorX out)
# Work files live in .bench/ (generated data, a cluster on port 55432, a Python venv); delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
root=$PWD/.bench
shared=$(cd ../shared/bench 2>/dev/null && pwd) || { echo "needs ../shared/bench (lineitem.sql, connectorx_lineitem.py)"; exit 1; }
mkdir -p "$root"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=55432
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }

# 1. Data: tpchgen-cli, once.
if [ ! -f "$root/lineitem.csv" ]; then
  [ -x "$root/tools/bin/tpchgen-cli" ] || cargo install --quiet --root "$root/tools" tpchgen-cli
  "$root/tools/bin/tpchgen-cli" csv -s 1 --tables=lineitem --output-dir "$root/gen"
  mv "$(find "$root/gen" -name 'lineitem*.csv' | head -1)" "$root/lineitem.csv"
fi

# 2. A cluster with the table loaded, once; started for every run of this script.
run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -d "$root/pg" ]; then
  mkdir -p "$root/pg" && [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$root/pg"
  run_pg "$bin/initdb" -D "$root/pg" -U postgres --auth=trust --locale=C >/dev/null
fi
[ "$(id -u)" -ne 0 ] || chmod o+rx "$root"
run_pg "$bin/pg_ctl" -D "$root/pg" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c shared_buffers=1GB" -l "$root/pg/server.log" -w start >/dev/null
trap 'run_pg "$bin/pg_ctl" -D "$root/pg" -m fast stop >/dev/null' EXIT
psql=("$bin/psql" -X -q -h 127.0.0.1 -p $port -U postgres -d postgres)
if [ "$("${psql[@]}" -A -t -c "SELECT to_regclass('lineitem') IS NULL")" = t ]; then
  "${psql[@]}" -f "$shared/lineitem.sql"
  "${psql[@]}" -c "\\copy lineitem FROM '$root/lineitem.csv' CSV HEADER"
  "${psql[@]}" -c "ANALYZE lineitem"
fi
echo "lineitem rows: $("${psql[@]}" -A -t -c 'SELECT count(*) FROM lineitem')"

# 3. Tools under test.
cargo build --quiet --release -p inlet-host --bin inlet
if [ -z "${SKIP_CONNECTORX:-}" ] && [ ! -x "$root/venv/bin/python" ]; then
  python3 -m venv "$root/venv" && "$root/venv/bin/pip" install --quiet connectorx pyarrow
fi
export INLET_CACHE_DIR=$root/cache
target/release/inlet spec postgres >/dev/null   # compile the component once

url="postgresql://postgres@127.0.0.1:$port/postgres"
inlet="target/release/inlet sync postgres --to $root/out/lake --allow-private-network --set host=127.0.0.1 --set port=$port --set user=postgres --set database=postgres --stream public.lineitem"
psql_copy="${psql[*]} -o /dev/null -c"
names=(copy_text copy_binary)
commands=("$psql_copy 'COPY lineitem TO STDOUT'" "$psql_copy 'COPY lineitem TO STDOUT (FORMAT binary)'")
if [ -z "${SKIP_CONNECTORX:-}" ]; then
  names+=(connectorx_1 connectorx_2)
  commands+=("$root/venv/bin/python $shared/connectorx_lineitem.py $url $root/out/cx.parquet 1"
    "$root/venv/bin/python $shared/connectorx_lineitem.py $url $root/out/cx.parquet 2")
fi
names+=(inlet inlet_parallel_2 inlet_parallel_2_key)
commands+=("$inlet" "$inlet --parallel 2" "$inlet --parallel 2 --set 'tables.\"public.lineitem\".split=key'")

# A warm-up of every case (a failure stops here, showing why), then $runs rounds of every case in
# turn: this machine's speed drifts, so each case is compared with COPY text of the same round.
for i in "${!names[@]}"; do
  rm -rf "$root/out" && mkdir -p "$root/out"
  bash -c "exec ${commands[$i]}" >/dev/null 2>&1 || { echo "${names[$i]} failed:"; bash -c "exec ${commands[$i]}"; exit 1; }
done
# The server's CPU for a case: what the postmaster's reaped children (the backends) used, from
# /proc (fields 16-17, in clock ticks); on 2 cores, client and server CPU share the machine.
postmaster=$(head -1 "$root/pg/postmaster.pid")
server_ticks() { awk '{print $16 + $17}' "/proc/$postmaster/stat"; }
: > "$root/rounds"
for round in $(seq "$runs"); do
  for i in "${!names[@]}"; do
    rm -rf "$root/out" && mkdir -p "$root/out"
    before=$(server_ticks)
    /usr/bin/time -f "$round ${names[$i]} %e %U %S %M" -o "$root/time" bash -c "exec ${commands[$i]}" >/dev/null 2>&1
    sleep 0.3   # the backends' exit, reaped by the postmaster
    echo "$(tail -1 "$root/time") $(( $(server_ticks) - before )) $(getconf CLK_TCK)" >> "$root/rounds"
  done
done
python3 - "$root/rounds" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
runs = {}
for round_, name, wall, user, system, kb, ticks, hz in rows:
    runs.setdefault(name, {})[round_] = (float(wall), float(user) + float(system), int(kb) / 1024,
                                         int(ticks) / int(hz))
def median(values):
    return statistics.median(values) if values else float('nan')
def ratios(name, base):
    if base not in runs:
        return []
    return sorted(runs[name][r][0] / runs[base][r][0] for r in runs[name] if r in runs[base])
def ratio(name, base):
    return median(ratios(name, base))
print(f"== {len(runs['copy_text'])} rounds after a warm-up: medians of wall and CPU (user+sys) time, of the")
print("   server's CPU for the case, peak RSS, and the median of each round's ratio to COPY text /")
print("   ConnectorX of that round")
def times(x):
    return '-' if x != x else f"{x:.2f}x"
print(f"{'case':24} {'wall':>8} {'CPU':>8} {'server':>8} {'peak RSS':>10} {'/ COPY text':>12} {'/ CX(1)':>8} {'/ CX(2)':>8}  rounds / COPY text")
for name, by_round in runs.items():
    walls = [w for w, _, _, _ in by_round.values()]
    cpus = [c for _, c, _, _ in by_round.values()]
    servers = [s for _, _, _, s in by_round.values()]
    rss = max(m for _, _, m, _ in by_round.values())
    print(f"{name:24} {median(walls):7.2f}s {median(cpus):7.2f}s {median(servers):7.2f}s {rss:7.0f} MiB {times(ratio(name, 'copy_text')):>12} "
          f"{times(ratio(name, 'connectorx_1')):>8} {times(ratio(name, 'connectorx_2')):>8}  "
          + " ".join(f"{r:.2f}" for r in ratios(name, 'copy_text')))
EOF
