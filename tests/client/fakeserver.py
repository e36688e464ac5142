"""A stand-in Voight server for the client tests: stdlib http.server in a thread.

It records every request, answers /v1/ingest like the real one (207 with per-item results,
`agent_paused`) and the hook endpoint (200, with Claude Code's deny decision while the agent is
paused), and can be switched to fail (500, 429), to pause the agent, to demand a key,
to refuse large bodies unread (413, then a reset), to skew its Date header, or be stopped and
restarted on the same port.
"""

import email.utils
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Request:
    def __init__(self, method: str, path: str, headers: dict, body):
        self.status = 0
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def __repr__(self):
        return f"<{self.method} {self.path}>"


HOOK = "/v1/hooks/claude-code"

class FakeVoight:
    def __init__(self):
        self.requests: list[Request] = []
        self.mode = "ok"  # ok | error (500) | throttle (429) | bad (400)
        self.paused_reason: str | None = None
        self.required_key: str | None = None
        self.date_offset = 0.0
        # Bodies over this get 413 before they are read, and the connection closes with the
        # rest unread -- what gunicorn did before voight/unread_body.py: a reset.
        self.max_body: int | None = None
        self.hold: threading.Event | None = None  # when set, answers wait until it is set
        self.seen_ids: set = set()
        self.lock = threading.Lock()
        self.port = 0
        self.httpd = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # -- what arrived --------------------------------------------------------------------
    def ingest_batches(self) -> list[list[dict]]:
        """Batches the server accepted (207), in arrival order."""
        return [r.body for r in self.requests if r.path == "/v1/ingest" and r.status == 207]

    def events(self) -> list[dict]:
        """Every event accepted, in arrival order: the batches' and the hook endpoint's."""
        out: list[dict] = []
        for r in self.requests:
            if r.path == "/v1/ingest" and r.status == 207:
                out += r.body
            elif r.path == HOOK and r.status == 200:
                out.append(r.body)
        return out

    def hook_events(self) -> list[dict]:
        return [e for e in self.events() if e.get("source") == "claude_code"]

    def usage_events(self) -> list[dict]:
        return [e for e in self.events() if e.get("type") == "usage"]

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    # -- answers -------------------------------------------------------------------------
    def answer(self, method: str, path: str, headers: dict, body) -> tuple[int, dict | None]:
        if path == "/healthz":
            return 200, {"ok": True}
        if self.required_key and headers.get("authorization") != f"Bearer {self.required_key}":
            return 401, {"error": "invalid API key"}
        if self.mode == "error":
            return 500, {"error": "boom"}
        if self.mode == "throttle":
            return 429, {"error": "slow down"}
        if self.mode == "bad":
            return 400, {"error": "bad request"}
        if path == "/v1/ingest" and method == "POST":
            results = []
            for event in body:
                status = "duplicate" if event.get("id") in self.seen_ids else "created"
                self.seen_ids.add(event.get("id"))
                results.append({"id": event.get("id"), "status": status})
            return 207, {
                "results": results,
                "agent_paused": self.paused_reason is not None,
                "paused_reason": self.paused_reason or "",
            }
        if path == HOOK and method == "POST":
            if self.paused_reason is None:
                return 200, {}
            return 200, {"hookSpecificOutput": {
                "hookEventName": "PreToolUse", "permissionDecision": "deny",
                "permissionDecisionReason": f"Voight: agent paused — {self.paused_reason}",
            }}
        if path == "/v1/sessions" and method == "POST":
            return 201, {"id": str(uuid.uuid4()), "session_id": body.get("session_id") or "srv"}
        if path.startswith("/v1/sessions/") and method in ("POST", "PATCH"):
            return 200, {}
        return 404, {"error": "not found"}


def _handler(server: FakeVoight):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            if server.max_body is not None and length > server.max_body:
                return self._too_large()
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            headers = {k.lower(): v for k, v in self.headers.items()}
            if server.hold is not None:
                server.hold.wait(10)
            request = Request(self.command, self.path, headers, body)
            with server.lock:
                server.requests.append(request)
                status, answer = server.answer(self.command, self.path, headers, body)
                request.status = status
            out = json.dumps(answer).encode() if answer is not None else b""
            self.send_response_only(status)
            self.send_header("Date", email.utils.formatdate(time.time() + server.date_offset,
                                                            usegmt=True))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(out)
            self.close_connection = True

        def _too_large(self):
            with server.lock:
                request = Request(self.command, self.path, {}, None)
                request.status = 413
                server.requests.append(request)
            out = json.dumps({"error": f"body is larger than {server.max_body} bytes"}).encode()
            self.send_response_only(413)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(out)
            self.close_connection = True

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args):
            pass

    return Handler
