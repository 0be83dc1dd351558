"""Blocking HTTP GETs over `wasi:http/outgoing-handler`, the only way out of the sandbox.

componentize-py generates the `wasi:http` bindings (and an asyncio `poll_loop.py`); a connector
reads page after page, so this module blocks on each pollable instead. The host checks every
request: its origin must be the declared one, and a credential placeholder in a header is
replaced by the granted secret only for the hosts the grant names.
"""

from dataclasses import dataclass
from typing import Dict, List, Tuple

from componentize_py_types import Err
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import wasi_http_types as http

import errors

#: Bytes asked for per read of the response body.
READ_SIZE = 64 * 1024
#: Longest wait for the first byte and between bytes, in nanoseconds (the host may clamp it).
TIMEOUT_NS = 60 * 1_000_000_000


@dataclass
class Response:
    """A response read whole."""

    status: int
    headers: Dict[str, str]
    body: bytes


def get(scheme: str, authority: str, path_and_query: str, headers: List[Tuple[str, str]]) -> Response:
    """Sends one GET and reads the whole response. Raises `transient` for a failed exchange,
    `config` when the host refused the request (the run's error then names the sandbox rule)."""
    what = f"GET {scheme}://{authority}{path_and_query.split('?')[0]}"
    try:
        fields = http.Fields.from_list([(name, value.encode()) for name, value in headers])
        request = http.OutgoingRequest(fields)
        request.set_method(http.Method_Get())
        request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
        request.set_authority(authority)
        request.set_path_with_query(path_and_query)
    except Err as failure:
        raise errors.config(f"{what}: not a valid request ({type(failure.value).__name__})") from None
    outgoing_body = request.body()
    options = http.RequestOptions()
    for set_timeout in (options.set_first_byte_timeout, options.set_between_bytes_timeout):
        try:
            set_timeout(TIMEOUT_NS)
        except Err:
            pass  # the host keeps its own default
    try:
        future = outgoing_handler.handle(request, options)
    except Err as failure:
        raise _failure(what, failure.value) from None
    with future:
        try:
            http.OutgoingBody.finish(outgoing_body, None)
        except Err as failure:
            raise _failure(what, failure.value) from None
        while (outcome := future.get()) is None:
            with future.subscribe() as pollable:
                pollable.block()
    # `outcome` is Ok(Ok(response)), Ok(Err(error-code)), or Err(()) if asked twice.
    if isinstance(outcome, Err) or isinstance(outcome.value, Err):
        raise _failure(what, None if isinstance(outcome, Err) else outcome.value.value)
    with outcome.value.value as response:
        status = response.status()
        with response.headers() as fields:
            names = {name.lower(): value.decode("latin-1") for name, value in fields.entries()}
        body = _read_body(what, response.consume())
    return Response(status, names, body)


def _read_body(what: str, incoming_body: http.IncomingBody) -> bytes:
    chunks = []
    with incoming_body.stream() as stream:
        while True:
            try:
                chunks.append(stream.blocking_read(READ_SIZE))
            except Err as failure:
                if isinstance(failure.value, streams.StreamError_Closed):
                    break
                raise errors.ConnectorError("transient", f"{what}: the response body broke off") from None
    with http.IncomingBody.finish(incoming_body):
        pass  # trailers: none expected
    return b"".join(chunks)


def _failure(what: str, code) -> errors.ConnectorError:
    if isinstance(code, http.ErrorCode_HttpRequestDenied):
        return errors.config(
            f"{what}: the host refused the request (not a declared destination, or a credential "
            "may not be sent there); the run's error names the rule"
        )
    reason = type(code).__name__.removeprefix("ErrorCode_") if code is not None else "no response"
    return errors.ConnectorError("transient", f"{what}: {reason}")
