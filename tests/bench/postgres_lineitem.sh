#!/usr/bin/env bash
# Benchmark (../shared/bench/README.md): TPC-H lineitem SF1 from PostgreSQL to Parquet.
# Compares, on this machine, the one-connection limit (psql COPY text/binary to /dev/null),
# ConnectorX + pyarrow (1 and 2 partitions) and Inlet's postgres connector into a local lake.
# Prints the median wall time of RUNS runs after a warm-up, peak RSS, and the ratios. Asserts nothing.
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

measure() { # name, command...: median wall seconds and max peak RSS (MiB) over $runs runs after a warm-up
  local name=$1; shift
  rm -rf "$root/out" && mkdir -p "$root/out"
  "$@" >/dev/null 2>&1 || { echo "$name failed:"; "$@"; exit 1; }
  local walls=() rss=0
  for _ in $(seq "$runs"); do
    rm -rf "$root/out" && mkdir -p "$root/out"
    /usr/bin/time -f '%e %M' -o "$root/time" "$@" >/dev/null 2>&1
    read -r wall kb < "$root/time"
    walls+=("$wall"); [ "$kb" -gt "$rss" ] && rss=$kb
  done
  local median
  median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-34s %8.2f s %8.0f MiB\n' "$name" "$median" "$((rss / 1024))"
  eval "result_${name//[^a-zA-Z0-9]/_}=$median"
}

url="postgresql://postgres@127.0.0.1:$port/postgres"
echo "== median of $runs runs after a warm-up: wall, peak RSS"
measure copy_text "${psql[@]}" -c "COPY lineitem TO STDOUT" -o /dev/null
measure copy_binary "${psql[@]}" -c "COPY lineitem TO STDOUT (FORMAT binary)" -o /dev/null
if [ -z "${SKIP_CONNECTORX:-}" ]; then
  measure connectorx_1 "$root/venv/bin/python" "$shared/connectorx_lineitem.py" "$url" "$root/out/cx.parquet" 1
  measure connectorx_2 "$root/venv/bin/python" "$shared/connectorx_lineitem.py" "$url" "$root/out/cx.parquet" 2
else
  result_connectorx_1=nan result_connectorx_2=nan
fi
inlet=(target/release/inlet sync postgres --to "$root/out/lake" --allow-private-network
  --set host=127.0.0.1 --set port=$port --set user=postgres --set database=postgres --stream public.lineitem)
measure inlet "${inlet[@]}"
measure inlet_parallel_2 "${inlet[@]}" --parallel 2
measure inlet_parallel_2_ctid "${inlet[@]}" --parallel 2 --set 'tables."public.lineitem".split=ctid'
python3 -c "
nan = float('nan')
t, cx1, cx2 = $result_copy_text, $result_connectorx_1, $result_connectorx_2
for name, inlet in [('inlet', $result_inlet), ('inlet --parallel 2', $result_inlet_parallel_2), ('inlet --parallel 2, ctid', $result_inlet_parallel_2_ctid)]:
    print(f'{name:26} / COPY text: {inlet / t:.2f}x   / ConnectorX(1): {inlet / cx1:.2f}x   / ConnectorX(2): {inlet / cx2:.2f}x')"
