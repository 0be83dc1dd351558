#!/usr/bin/env bash
# Builds python_http.wasm (a WebAssembly component) from the Python sources here, against the
# repository's wit/ (the Inlet contract) and wit/ here (the world adding wasi:http).
#
#   ./build.sh [OUTPUT.wasm]          default: python_http.wasm beside this script
#
# componentize-py comes from $COMPONENTIZE_PY, tests/.venv-componentize (tests/services/install.sh
# installs it there) or PATH. Needs no network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
output="$(realpath -m "${1:-$here/python_http.wasm}")"

tool="${COMPONENTIZE_PY:-}"
if [ -z "$tool" ]; then
  if [ -x "$repo/tests/.venv-componentize/bin/componentize-py" ]; then
    tool="$repo/tests/.venv-componentize/bin/componentize-py"
  elif command -v componentize-py >/dev/null 2>&1; then
    tool="$(command -v componentize-py)"
  else
    echo "build.sh: componentize-py is missing: run tests/services/install.sh (it installs it into" \
      "tests/.venv-componentize), or \`pip install componentize-py==0.25.1\`" >&2
    exit 1
  fi
fi

cd "$here"
# The contract first: the world here includes it. -q keeps the output to errors.
"$tool" -q -d "$repo/wit" -d "$here/wit" -w inlet-examples:python-http/connector \
  componentize app -p "$here" -o "$output"
echo "built $output ($(stat -c %s "$output") bytes)"
