#!/usr/bin/env bash
# Builds what the container image holds into OUT: the release `inlet` binary (bin/inlet) and the
# compile cache of every built-in connector (cache/), checked to be complete: a second process
# loads each connector from it without compiling. The Dockerfile's build stage runs
# exactly this script; the tests run it with a binary they built (INLET_BINARY=path) because no
# Docker engine runs where they do.
#
#   deploy/stage-image.sh /out                       # cargo build --release, then stage
#   INLET_BINARY=target/debug/inlet deploy/stage-image.sh /tmp/out   # stage a given binary
set -euo pipefail
out="${1:?usage: deploy/stage-image.sh OUT}"
cd "$(dirname "$0")/.."
mkdir -p "$out/bin" "$out/cache"

if [ -n "${INLET_BINARY:-}" ]; then
  cp "$INLET_BINARY" "$out/bin/inlet"
else
  # rust-toolchain.toml names the wasm32-wasip2 target the built-in connectors compile to.
  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
  cargo build --release --locked -p inlet-host
  cp target/release/inlet "$out/bin/inlet"
fi
strip "$out/bin/inlet" 2>/dev/null || true

"$out/bin/inlet" --cache-dir "$out/cache" precompile

# The check: a second process must find every connector in the cache (a cold start of the image
# then compiles nothing).
second=$("$out/bin/inlet" --cache-dir "$out/cache" precompile)
if grep -v ": in the cache$" <<<"$second"; then
  echo "stage-image.sh: the connectors above were compiled again instead of loaded from the cache" >&2
  exit 1
fi
names=$(sed 's/: .*//' <<<"$second")
echo "staged $out: bin/inlet ($(du -h "$out/bin/inlet" | cut -f1)), cache/ ($(du -sh "$out/cache" | cut -f1), $(echo $names | wc -w) connectors)"
