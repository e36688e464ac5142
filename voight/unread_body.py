"""Read what a request left of its body before answering, so the answer reaches the client.

A view may answer without reading the body: a 413 decided from `Content-Length` alone, a 401
before parsing. gunicorn's sync worker then closes the socket with most of the body still
unread (its lingering close drains 64 KiB for at most 2 s), and the kernel answers the rest
with a reset. A client that reads while it sends (curl, Node's fetch) sees the 413 before
the reset; one that writes the whole body first (urllib and http.client, i.e. most Python
clients) gets EPIPE or ECONNRESET and never sees the answer.

`DrainUnreadBody` wraps the WSGI application: it counts what the application read from
`wsgi.input` and, once the answer is built and before the server writes it, reads and
discards the rest in 64 KiB chunks (memory stays flat), up to `VOIGHT_DRAIN_MAX_BYTES` within
`VOIGHT_DRAIN_SECONDS`. A body with more left than that is not read at all: a client sending
tens of megabytes to an ingest endpoint is not one worth holding a worker for, and its
connection is dropped as before.

The embedded default serves with daphne, which reads every body to its end before the
application runs (see `voight.embedded_http` for how it is kept from holding all of it).
"""

from __future__ import annotations

import time

from django.conf import settings

CHUNK = 64 * 1024


class _CountingInput:
    """`wsgi.input` as the application sees it, counting the bytes it takes."""

    def __init__(self, stream):
        self.stream = stream
        self.consumed = 0

    def read(self, size=-1, /):
        data = self.stream.read(size)
        self.consumed += len(data)
        return data

    def readline(self, size=-1, /):
        line = self.stream.readline(size)
        self.consumed += len(line)
        return line

    def readlines(self, hint=-1, /):
        lines = self.stream.readlines(hint)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        for line in self.stream:
            self.consumed += len(line)
            yield line


def _declared_length(environ) -> int | None:
    value = environ.get("CONTENT_LENGTH", "")
    return int(value) if value.isdigit() else None


def drain(environ, stream: _CountingInput, max_bytes: int, seconds: float) -> int:
    """Read and discard what is left of the body; the number of bytes discarded."""
    declared = _declared_length(environ)
    if declared is not None:
        left = declared - stream.consumed
        if left <= 0 or left > max_bytes:
            return 0
    elif environ.get("wsgi.input_terminated"):
        left = max_bytes  # chunked: the server's input ends with the body, read to its end
    else:
        return 0  # no length and an input that may not end: reading could block
    sock = environ.get("gunicorn.socket")
    deadline = time.monotonic() + seconds
    discarded = 0
    try:
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if sock is not None:
                sock.settimeout(remaining)  # a client that stalls must not hold the worker
            data = stream.stream.read(min(CHUNK, left))
            if not data:
                break
            discarded += len(data)
            left -= len(data)
    except (OSError, ValueError):
        pass  # the client went away or stalled: the connection closes either way
    finally:
        if sock is not None:
            sock.settimeout(None)  # gunicorn writes the answer on a blocking socket
    return discarded


class DrainUnreadBody:
    """WSGI middleware: answer only once the request body has been read (see the module)."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        stream = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = stream
        result = self.application(environ, start_response)
        drain(environ, stream, settings.VOIGHT_DRAIN_MAX_BYTES, settings.VOIGHT_DRAIN_SECONDS)
        return result
