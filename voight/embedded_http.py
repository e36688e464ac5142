"""daphne for the embedded default (`manage.py serve`), keeping request bodies bounded.

daphne reads a request's whole body before the application runs (Twisted keeps it in a
temporary file) and then puts all of it on the application's queue at once: a 300 MB POST
raised the process's peak memory by 300 MB. No view reads more than
`DATA_UPLOAD_MAX_MEMORY_SIZE` (the ingest limit plus 1 MiB), so this request class keeps at
most that much, reads the rest off the socket and drops it, and answers such a body 413 itself,
with the same JSON error as the ingest endpoints, without running the application. Reading it to
the end is what lets a client that sends its whole body before reading (urllib, the hook
client) see the answer (see `voight.unread_body` for gunicorn).
"""

from __future__ import annotations

import json
import time

from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings


class CappedRequest(WebRequest):
    def __init__(self, *args, **kwargs):
        self.body_received = 0
        self.body_over_limit = False
        super().__init__(*args, **kwargs)

    def gotLength(self, length):
        if length is not None and length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            self.body_over_limit = True
            length = 0  # nothing will be kept: no temporary file for it
        super().gotLength(length)

    def handleContentChunk(self, data):
        self.body_received += len(data)
        if self.body_received > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            self.body_over_limit = True
        if not self.body_over_limit:
            super().handleContentChunk(data)

    def process(self):
        if not self.body_over_limit:
            return super().process()
        self.request_start = time.time()
        body = json.dumps(
            {"error": f"body is larger than {settings.VOIGHT_MAX_BODY_BYTES} bytes"}
        ).encode()
        self.handle_reply({"type": "http.response.start", "status": 413, "headers": [
            (b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode()),
        ]})
        self.handle_reply({"type": "http.response.body", "body": body})
        return None


class CappedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CappedRequest
        return protocol
