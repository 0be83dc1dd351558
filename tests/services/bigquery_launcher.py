#!/usr/bin/env python3
"""Start local-bigquery (PyPI, DuckDB-backed BigQuery REST emulator) offline.

Run with the interpreter of the venv made by install.sh:

  tests/.venv/bin/python tests/services/bigquery_launcher.py --port P [--project test]
      [--data-dir DIR] [--grpc-port G] [--storage-emulator-host http://127.0.0.1:U]

Prints "READY <rest port>" on stdout once the REST API answers requests (P may be 0 to pick a
free port). REST base: http://127.0.0.1:<port>/bigquery/v2/projects/<project>/...
Stop it with SIGTERM/SIGINT.

What this does on top of `local-bigquery serve`:
- DuckDB cannot download extensions here. local-bigquery needs ducklake (its storage), httpfs
  (gs:// reads) and sometimes spatial; they come from the PyPI packages duckdb-extension-*
  and are INSTALLed by file path into an extension directory inside the venv (once), which
  every DuckDB connection is then given.
- local-bigquery connects with duckdb.connect(config={"TimeZone": "UTC"}), which fails offline
  ("icu extension ... could not be autoloaded"): the time zone is set after connecting instead.
- gs:// URIs in load jobs are read over HTTP from fake-gcs-server when STORAGE_EMULATOR_HOST
  (env, or --storage-emulator-host) is set, e.g. http://127.0.0.1:<fake-gcs-server port>.
- data goes to --data-dir, or a temporary directory removed on exit (default is /data).
- the gRPC Storage API listens on --grpc-port (default 0: any free port), not 9060.
- the DuckDB secret for fake-gcs-server is created once at start, not by concurrent load jobs
  (which conflict in the catalog).
"""

import argparse
import importlib
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import threading

import duckdb

EXTENSIONS = ("ducklake", "httpfs", "spatial")
EXTENSION_DIR = pathlib.Path(sys.prefix) / "duckdb-extensions"
_connect = duckdb.connect


def extension_file(name: str) -> pathlib.Path:
    """The .duckdb_extension file shipped by the PyPI package duckdb-extension-<name>."""
    package = importlib.import_module(f"duckdb_extension_{name}")
    root = pathlib.Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = root / f"{name}.duckdb_extension"
    if not path.exists():
        sys.exit(f"missing {path}: duckdb-extension-{name} must match duckdb {duckdb.__version__}")
    return path


def install_extensions(check: bool, directory: pathlib.Path = EXTENSION_DIR):
    """INSTALL each extension from its file into `directory` (skipped when already there)."""
    con = _connect(config={"extension_directory": str(directory)})
    installed = {n for (n,) in con.sql(
        "SELECT extension_name FROM duckdb_extensions() WHERE installed").fetchall()}
    for name in EXTENSIONS:
        if name not in installed:
            con.execute(f"INSTALL '{extension_file(name)}'")
    for name in EXTENSIONS if check else ():  # at install time: fail now, not at a query
        con.execute(f"LOAD {name}")
    con.close()


def offline_connect(database=":memory:", read_only=False, config=None, **kwargs):
    """duckdb.connect without the TimeZone config (set after connecting), with our extensions."""
    config = dict(config or {})
    time_zone = config.pop("TimeZone", None)
    config.setdefault("extension_directory", str(EXTENSION_DIR))
    config.setdefault("autoinstall_known_extensions", False)  # no network: fail fast instead
    con = _connect(database, read_only, config, **kwargs)
    if time_zone:
        con.execute("SET TimeZone = ?", [time_zone])
    return con


def main():
    parser = argparse.ArgumentParser(description="Run local-bigquery offline")
    parser.add_argument("--port", type=int, required=True, help="REST port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--project", default="test")
    parser.add_argument("--dataset", default="local",
                        help="local-bigquery creates this dataset in --project at start")
    parser.add_argument("--data-dir", type=pathlib.Path)
    parser.add_argument("--storage-emulator-host", default=os.environ.get("STORAGE_EMULATOR_HOST"))
    parser.add_argument("--install-extensions", action="store_true",
                        help="only install the DuckDB extensions into the venv, then exit")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()

    install_extensions(check=args.install_extensions)
    if args.install_extensions:
        return
    duckdb.connect = offline_connect  # local-bigquery calls duckdb.connect(...) at runtime

    import uvicorn

    from local_bigquery.settings import settings

    temporary = None
    if args.data_dir is None:
        temporary = args.data_dir = pathlib.Path(tempfile.mkdtemp(prefix="local-bigquery-"))
    settings.data_dir = args.data_dir
    settings.default_project_id = args.project
    settings.default_dataset_id = args.dataset
    settings.bigquery_host, settings.bigquery_port = args.host, args.port
    settings.storage_emulator_host = args.storage_emulator_host or None

    from local_bigquery import app
    from local_bigquery.engine import database
    from local_bigquery.grpc import server as grpc_server

    con = database.connection()  # open DuckDB now, so set-up errors show before READY
    if settings.storage_emulator_host:
        # Every load job from gs:// runs `CREATE SECRET IF NOT EXISTS gcs_emulator` inside its own
        # transaction; two jobs at once then fail with "Catalog write-write conflict on create
        # with gcs_emulator". Creating the secret once here makes theirs no-ops.
        from local_bigquery.jobs import storage
        storage.paths(con.cursor(), "gs://inlet-launcher/warm-up")
    grpc, settings.grpc_port = grpc_server.start(args.host, args.grpc_port)
    rest = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                         log_level=args.log_level))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(rest, "should_exit", True))
    thread = threading.Thread(target=rest.run, daemon=True)
    thread.start()
    while not rest.started and thread.is_alive():
        thread.join(0.02)
    if not rest.started:
        sys.exit("local-bigquery REST server did not start")
    port = rest.servers[0].sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    try:
        while thread.is_alive():
            thread.join(0.2)
    finally:
        grpc.stop(None)
        database.connection().close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        # Skip the interpreter's slow teardown (thread pools, V8, gRPC): everything is closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
