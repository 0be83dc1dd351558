#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine that has only rustup/cargo, Python,
# Node and apt. Installs what it needs first. CI (`.ci/run`) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-wasip2 target, rustfmt, clippy"
# rust-toolchain.toml asks for them; older rustups do not install targets on their own.
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

step "PostgreSQL server binaries (for the postgres connector's tests)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq postgresql
fi
ls /usr/lib/postgresql/*/bin/initdb

step "Java and the Firestore emulator (Google's, from the Cloud SDK)"
firestore_jar=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
if ! command -v java >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq openjdk-17-jre-headless
fi
java -version 2>&1 | head -1
if [ ! -f "$firestore_jar" ]; then
  echo "error: the Firestore emulator is missing ($firestore_jar): install the Google Cloud SDK, then \`gcloud components install cloud-firestore-emulator\` (Debian: apt-get install google-cloud-cli-firestore-emulator from Google's Cloud SDK apt repository)" >&2
  exit 1
fi

step "GCS and BigQuery emulators (fake-gcs-server, local-bigquery) into tests/.venv"
tests/services/install.sh

step "componentize-py (builds the Python example connector) into tests/.venv-componentize"
tests/services/install_componentize.sh

step "format"
cargo fmt --all -- --check
for ws in connectors tests/guests; do (cd "$ws" && cargo fmt --all -- --check); done

step "lints (host, sdk, tests)"
cargo clippy --workspace --all-targets -- -D warnings
step "lints (connectors, test components; wasm32-wasip2)"
for ws in connectors tests/guests; do (cd "$ws" && cargo clippy --workspace --release -- -D warnings); done

step "tests"
cargo test --workspace
step "connector unit tests (native target: pure parsing and mapping code)"
(cd connectors && cargo test --workspace --lib --target "$(rustc -vV | sed -n 's/host: //p')")
