"""Outbound HTTP inside a component, over `wasi:http/outgoing-handler` (blocking).

Importable only in components built with HTTP in their world (`sluice_sdk.build --http`);
`sluice_sdk._wasm` falls back to a clear error otherwise. The host decides what may be reached
(`allow_hosts`); a refusal arrives as the `HTTP-request-denied` error code.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as t
from wit_world.imports.streams import StreamError_Closed

from ._host import HostError
from .errors import Transient
from .http import Request, Response

# Bytes per write/read call: wasi:io streams accept at most 4096 bytes per blocking write.
CHUNK = 4096
_METHODS = {
    "GET": t.Method_Get, "HEAD": t.Method_Head, "POST": t.Method_Post, "PUT": t.Method_Put,
    "DELETE": t.Method_Delete, "OPTIONS": t.Method_Options, "PATCH": t.Method_Patch,
}


def _build(request: Request) -> t.OutgoingRequest:
    url = urlsplit(request.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise HostError(f"not an http(s) URL: {request.url}")
    headers = t.Fields.from_list([(k.lower(), v.encode()) for k, v in request.headers])
    out = t.OutgoingRequest(headers)
    method = _METHODS.get(request.method)
    out.set_method(method() if method else t.Method_Other(request.method))
    out.set_scheme(t.Scheme_Https() if url.scheme == "https" else t.Scheme_Http())
    out.set_authority(url.netloc)
    out.set_path_with_query((url.path or "/") + (f"?{url.query}" if url.query else ""))
    return out


def _write_body(out: t.OutgoingRequest, body: bytes) -> t.OutgoingBody:
    outgoing = out.body()
    if body:
        stream = outgoing.write()
        for i in range(0, len(body), CHUNK):
            stream.blocking_write_and_flush(body[i : i + CHUNK])
        del stream  # a body's stream must be dropped before the body is finished
    return outgoing


def _read_body(response: t.IncomingResponse) -> bytes:
    incoming = response.consume()
    stream = incoming.stream()
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(CHUNK * 16))
        except Err as e:
            if isinstance(e.value, StreamError_Closed):
                break
            raise Transient(f"reading the HTTP response failed: {e.value}") from None
    del stream
    return b"".join(chunks)


def _error(request: Request, code: object) -> Exception:
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return HostError("HTTP-request-denied (is the host in `allow_hosts`?)")
    return Transient(f"HTTP {request.method} {request.url} failed: {name}")


def send(request: Request) -> Response:
    out = _build(request)
    body = _write_body(out, request.body)
    try:
        future = outgoing_handler.handle(out, None)
    except Err as e:
        raise _error(request, e.value) from None
    t.OutgoingBody.finish(body, None)
    future.subscribe().block()
    result = future.get()  # Ok(Ok(response)) | Ok(Err(error-code)) | Err(()) once taken
    inner = result.value if isinstance(result, Ok) else None
    if inner is None:
        raise Transient(f"HTTP {request.method} {request.url}: no response")
    if isinstance(inner, Err):
        raise _error(request, inner.value)
    response = inner.value
    headers = [(k, v.decode("latin-1")) for k, v in response.headers().entries()]
    return Response(response.status(), headers, _read_body(response))
