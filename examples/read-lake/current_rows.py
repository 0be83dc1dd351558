"""The current rows of one stream of an Inlet lake folder, with DuckDB.

    python current_rows.py LAKE CONNECTION STREAM [OUT.parquet]

Reads the connection's commit manifests (never a file no commit references: a failed run's
leftovers are ignored), takes the newest *complete* full copy of a full-refresh stream and the
commits after it, reads their Parquet files by column name (columns added later are there, null in
older rows), and keeps one row per primary key: the one committed last. Prints the rows as CSV, or
writes them to OUT.parquet.
"""

import glob
import json
import os
import sys

import duckdb


def manifests(lake, connection):
    paths = sorted(glob.glob(os.path.join(lake, connection, "_commits", "*.json")))
    return [json.load(open(path)) for path in paths]


def live_files(commits, stream):
    """(sequence, path) of every file that holds the stream's current rows, oldest first."""
    entries = [(c["sequence"], c["streams"][stream]) for c in commits if stream in c["streams"]]
    if not entries:
        sys.exit(f"stream `{stream}` has no commits")
    copy_of = lambda entry: (entry.get("full_copy") or {}).get("run_id")
    complete = [copy_of(e) for _, e in entries if (e.get("full_copy") or {}).get("complete")]
    if complete:
        # The newest complete copy replaces everything before it; a later copy that did not
        # complete is not used.
        run = complete[-1]
        first = min(seq for seq, e in entries if copy_of(e) == run)
        entries = [(s, e) for s, e in entries if s >= first and copy_of(e) in (run, None)]
    return [(seq, f["path"]) for seq, e in entries for f in e["files"]], entries[-1][1]


def current_rows(lake, connection, stream):
    commits = manifests(lake, connection)
    files, newest = live_files(commits, stream)
    con = duckdb.connect()
    if not files:
        return con.sql("SELECT NULL WHERE false")
    con.execute("CREATE TABLE sequence_of (path VARCHAR, seq BIGINT)")
    con.executemany(
        "INSERT INTO sequence_of VALUES (?, ?)",
        [(os.path.join(lake, path), seq) for seq, path in files],
    )
    paths = [os.path.join(lake, path) for _, path in files]
    rows = con.read_parquet(paths, union_by_name=True, filename=True, file_row_number=True)
    con.register("committed", rows)
    key = newest.get("primary_key") or []
    newest_first = "ORDER BY s.seq DESC, c.filename DESC, c.file_row_number DESC"
    partition = ", ".join('c."' + k.replace('"', '""') + '"' for k in key)
    dedupe = (
        f"QUALIFY row_number() OVER (PARTITION BY {partition} {newest_first}) = 1" if key else ""
    )
    return con.sql(
        f"""SELECT c.* EXCLUDE (filename, file_row_number)
            FROM committed c JOIN sequence_of s ON s.path = c.filename
            {dedupe}"""
    )


if __name__ == "__main__":
    lake, connection, stream = sys.argv[1:4]
    result = current_rows(lake, connection, stream)
    if len(sys.argv) > 4:
        result.write_parquet(sys.argv[4])
    else:
        result.write_csv("/dev/stdout")
