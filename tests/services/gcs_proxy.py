#!/usr/bin/env python3
"""A thin proxy in front of fake-gcs-server that lets `object_store`'s GCS client write to it.

fake-gcs-server answers the XML API's reads (GET, HEAD, list-type=2 listing, DELETE) correctly,
but rejects the XML API's writes with 400. `object_store` only speaks the XML API, so this proxy
turns the three XML writes into JSON-API calls and passes everything else through unchanged:

  PUT /<bucket>/<object>                          -> JSON multipart upload
  PUT /<bucket>/<object>  + x-goog-copy-source    -> read the source, JSON multipart upload
  POST ?uploads / PUT ?partNumber&uploadId /      -> parts are kept in this process's memory and
  POST ?uploadId (complete) / DELETE ?uploadId      uploaded as one object on completion

Every upload uses the JSON API's `uploadType=multipart`, because fake-gcs-server honours
`ifGenerationMatch` there (and answers 412), but ignores it for `uploadType=media` and for
copyTo/rewriteTo. `x-goog-if-generation-match` (0 = create only) is passed on as
`ifGenerationMatch`; a failed precondition comes back as 412, which object_store maps to
AlreadyExists / Precondition. Write responses carry `ETag` (quoted MD5, as on GET) and
`x-goog-generation`, which object_store reads into PutResult.

fake-gcs-server routes XML requests only when the Host header equals its -public-host, so the
proxy rewrites Host on every request.

Usage: python gcs_proxy.py --listen-port P --upstream-port U [--upstream-public-host H:U]
Prints "READY <port>" on stdout once listening (P may be 0 to pick a free port).
Standard library only.
"""

import argparse
import hashlib
import http.client
import json
import re
import sys
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

# Paths of the JSON API and the emulator's own endpoints; anything else is the XML API.
JSON_PREFIXES = ("/storage/", "/upload/", "/download/", "/batch/", "/_internal/")
# Request headers that become object metadata in the JSON upload.
METADATA_HEADERS = {
    "content-type": "contentType",
    "cache-control": "cacheControl",
    "content-disposition": "contentDisposition",
    "content-encoding": "contentEncoding",
    "content-language": "contentLanguage",
}
# Headers not passed on (hop-by-hop, or set by http.server itself).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}

UPSTREAM = ("127.0.0.1", 0)  # set in main()
PUBLIC_HOST = ""
UPLOADS = {}  # uploadId -> {"bucket", "name", "meta", "parts": {number: (etag, bytes)}}
UPLOADS_LOCK = threading.Lock()


def upstream(method, path, body=None, headers=None):
    """One request to fake-gcs-server; returns (status, headers, body)."""
    conn = http.client.HTTPConnection(*UPSTREAM, timeout=60)
    try:
        conn.request(method, path, body=body, headers={**(headers or {}), "Host": PUBLIC_HOST})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def xml_error(status, code, message):
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>").encode()
    return status, {"Content-Type": "application/xml"}, body


def upload(bucket, name, data, meta, if_generation_match=None):
    """Upload one object through the JSON API; returns an XML-API style (status, headers, body)."""
    boundary = uuid.uuid4().hex
    meta = {**meta, "name": name}
    content_type = meta.get("contentType", "application/octet-stream")
    body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(meta)}\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    query = {"uploadType": "multipart"}
    if if_generation_match is not None:
        query["ifGenerationMatch"] = if_generation_match
    status, _, resp = upstream(
        "POST", f"/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?"
        + urllib.parse.urlencode(query), body,
        {"Content-Type": f"multipart/related; boundary={boundary}"})
    if status == 412:
        return xml_error(412, "PreconditionFailed",
                         "At least one of the pre-conditions you specified did not hold.")
    if status >= 300:
        return xml_error(status, "UpstreamError", resp.decode(errors="replace"))
    obj = json.loads(resp)
    return 200, {"ETag": f'"{obj["md5Hash"]}"', "x-goog-generation": obj["generation"]}, b""


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response below carries Content-Length

    def log_message(self, *args):  # quiet
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, headers, body):
        headers = dict(headers.items() if isinstance(headers, dict) else headers)
        length = str(len(body))
        if self.command == "HEAD":  # no body, but keep the object's size
            length = next((v for k, v in headers.items() if k.lower() == "content-length"), "0")
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        data = self.body()
        xml = not url.path.startswith(JSON_PREFIXES)
        bucket, _, name = url.path.lstrip("/").partition("/")
        bucket, name = urllib.parse.unquote(bucket), urllib.parse.unquote(name)
        try:
            if xml and name and self.command in ("PUT", "POST", "DELETE"):
                result = self.xml_write(bucket, name, query, data)
                if result is not None:
                    return self.reply(*result)
            # Everything else goes through as it is (only Host is rewritten).
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            status, reply_headers, body = upstream(self.command, self.path, data or None, headers)
            if xml and status == 500 and b"no bucket named" in body:
                # fake-gcs-server answers 500 for a missing bucket; GCS answers 404 NoSuchBucket.
                return self.reply(*xml_error(404, "NoSuchBucket",
                                             "The specified bucket does not exist."))
            self.reply(status, reply_headers, body)
        except Exception as error:  # surface proxy bugs as 500s rather than hangs
            self.reply(*xml_error(500, "ProxyError", f"{type(error).__name__}: {error}"))

    def xml_write(self, bucket, name, query, data):
        """Handle an XML-API write; None means "not a write this proxy converts"."""
        meta = {field: self.headers[h] for h, field in METADATA_HEADERS.items() if h in self.headers}
        custom = {k[len("x-goog-meta-"):]: v for k, v in self.headers.items()
                  if k.lower().startswith("x-goog-meta-")}
        if custom:
            meta["metadata"] = custom
        match = self.headers.get("x-goog-if-generation-match")
        upload_id = query.get("uploadId", [None])[0]

        if self.command == "POST" and "uploads" in query:  # initiate multipart
            upload_id = uuid.uuid4().hex
            with UPLOADS_LOCK:
                UPLOADS[upload_id] = {"bucket": bucket, "name": name, "meta": meta, "parts": {}}
            return 200, {"Content-Type": "application/xml"}, (
                '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult>'
                f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(name)}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>").encode()

        if upload_id is not None:
            with UPLOADS_LOCK:
                pending = UPLOADS.get(upload_id)
            if pending is None:
                return xml_error(404, "NoSuchUpload", "The requested upload was not found.")
            if self.command == "PUT":  # upload part
                etag = f'"{hashlib.md5(data).hexdigest()}"'
                with UPLOADS_LOCK:
                    pending["parts"][int(query["partNumber"][0])] = (etag, data)
                return 200, {"ETag": etag}, b""
            if self.command == "DELETE":  # abort
                with UPLOADS_LOCK:
                    UPLOADS.pop(upload_id, None)
                return 204, {}, b""
            if self.command == "POST":  # complete: join the listed parts in the listed order
                listed = re.findall(r"<PartNumber>\s*(\d+)\s*</PartNumber>", data.decode())
                parts = pending["parts"]
                if not listed or any(int(n) not in parts for n in listed):
                    return xml_error(400, "InvalidPart", "One or more parts were not found.")
                whole = b"".join(parts[int(n)][1] for n in listed)
                status, headers, body = upload(bucket, name, whole, pending["meta"])
                if status != 200:
                    return status, headers, body
                with UPLOADS_LOCK:
                    UPLOADS.pop(upload_id, None)
                return 200, {"Content-Type": "application/xml",
                             "x-goog-generation": headers["x-goog-generation"]}, (
                    '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult>'
                    f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(name)}</Key><ETag>{headers['ETag']}</ETag>"
                    "</CompleteMultipartUploadResult>").encode()

        if self.command == "PUT" and "x-goog-copy-source" in self.headers:  # copy
            source = urllib.parse.unquote(self.headers["x-goog-copy-source"]).lstrip("/")
            src_bucket, _, src_name = source.partition("/")
            status, headers, content = upstream(
                "GET", f"/storage/v1/b/{urllib.parse.quote(src_bucket, safe='')}/o/"
                f"{urllib.parse.quote(src_name, safe='')}?alt=media")
            if status != 200:
                return xml_error(status, "NoSuchKey", f"Copy source {source}: HTTP {status}")
            src_type = dict((k.lower(), v) for k, v in headers).get("content-type")
            if src_type and "contentType" not in meta:
                meta["contentType"] = src_type
            return upload(bucket, name, content, meta, match)

        if self.command == "PUT" and not query:  # plain object upload
            return upload(bucket, name, data, meta, match)
        return None

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any


def main():
    global UPSTREAM, PUBLIC_HOST
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen-port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--upstream-public-host", help="fake-gcs-server's -public-host; "
                        "default 127.0.0.1:<upstream-port>")
    args = parser.parse_args()
    UPSTREAM = ("127.0.0.1", args.upstream_port)
    PUBLIC_HOST = args.upstream_public_host or f"127.0.0.1:{args.upstream_port}"
    server = ThreadingHTTPServer(("127.0.0.1", args.listen_port), Proxy)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
