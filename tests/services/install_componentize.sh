#!/usr/bin/env bash
# Installs componentize-py (pinned in componentize-requirements.txt) into tests/.venv-componentize,
# for the Python example connector's build and test. Idempotent: a stamp file records the hash of
# the requirements; when it matches, this does nothing, silently. Any Python 3.9+ (`python3`).
#
# A script of its own rather than a section of install.sh: the stamp of tests/.venv hashes
# install.sh itself, so any edit there would rebuild the emulators' venv on every checkout.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv-componentize"
stamp="$venv/.componentize-stamp"
key="$(sha256sum <"$here/componentize-requirements.txt" | cut -d' ' -f1)"

if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$venv/bin/componentize-py" ]; }; then
  echo "==> test tools: creating $venv (componentize-py)" >&2
  rm -f "$stamp"
  python3 -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r "$here/componentize-requirements.txt"
  "$venv/bin/componentize-py" --version >/dev/null
  echo "$key" >"$stamp"
fi
