"""A scripted stand-in for the Gemini API, for driving the real `gemini` CLI offline.

The CLI is pointed here with `GOOGLE_GEMINI_BASE_URL`. Each
`POST /v1beta/models/<model>:generateContent` or `:streamGenerateContent?alt=sse` is answered
from a script chosen by the turn's prompt: a list of steps, one per model request of the
turn, each a list of parts (text, or a function call the CLI then runs). The step is how many
`model` contents follow the prompt in the request, so the CLI's tool results drive the turn
forward as they would with the real API.

Every answered request is recorded with the usage it reported (`usageMetadata`), so tests
compare Voight's tokens and cost with what the "API" said, exactly. Requests outside any
script (the CLI's side calls: routing, next-speaker checks) get a fixed small answer and are
recorded too.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.e2e.anthropic_mock import ApiError, Text, ToolCall

MODEL_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/([^:/]+):(generateContent|streamGenerateContent|countTokens)$")

__all__ = ["Answered", "ApiError", "GeminiMock", "Text", "ToolCall"]


@dataclasses.dataclass
class Answered:
    """One model request the mock answered, with the usage it reported."""

    response_id: str
    model: str
    prompt_key: str  # the script that answered ("" for a side request)
    step: int
    prompt_tokens: int  # promptTokenCount: includes the cached tokens
    cached_tokens: int
    candidates_tokens: int
    thoughts_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.candidates_tokens + self.thoughts_tokens


def _user_text(content: dict) -> str:
    parts = content.get("parts") if isinstance(content.get("parts"), list) else []
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and "text" in p)


class GeminiMock:
    """`scripts` maps a phrase of the prompt to the steps of that turn's answer."""

    def __init__(self, scripts: dict[str, list[list[Text | ToolCall] | ApiError]], *,
                 run_tag: str):
        self.scripts = scripts
        self.run_tag = run_tag
        self.answered: list[Answered] = []
        self.refused: list[dict] = []
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                mock._record(self.command, self.path, None)
                self._send(404, b'{"error":{"code":404,"status":"NOT_FOUND"}}', "application/json")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                mock._record(self.command, self.path, body)
                match = MODEL_PATH.match(self.path.split("?")[0])
                if not match or not isinstance(body, dict):
                    self._send(404, b'{"error":{"code":404,"status":"NOT_FOUND"}}',
                               "application/json")
                    return
                model, method = match.groups()
                if method == "countTokens":
                    self._send(200, b'{"totalTokens": 100}', "application/json")
                    return
                status, payload = mock.answer(model, body)
                if status != 200 or method == "generateContent":
                    self._send(status, json.dumps(payload).encode(), "application/json")
                else:
                    self._send(200, f"data: {json.dumps(payload)}\r\n\r\n".encode(),
                               "text/event-stream")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, method: str, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body})

    def _turn(self, contents: list) -> tuple[str, int]:
        """(script key, step) for this request, or ("", 0) when no script matches."""
        for index in range(len(contents) - 1, -1, -1):
            content = contents[index]
            if not isinstance(content, dict) or content.get("role") != "user":
                continue
            text = _user_text(content)
            found = [(text.rfind(key), key) for key in self.scripts if key in text]
            if found:
                later = contents[index + 1:]
                return max(found)[1], sum(1 for c in later if c.get("role") == "model")
        return "", 0

    def answer(self, model: str, body: dict) -> tuple[int, dict]:
        contents = body.get("contents") if isinstance(body.get("contents"), list) else []
        key, step = self._turn(contents)
        # A side request (routing, next-speaker check) declares no tools: never the script.
        if key and not body.get("tools"):
            key = ""
        steps = self.scripts.get(key)
        parts_or_error = steps[min(step, len(steps) - 1)] if steps else None
        with self._lock:
            n = next(self._ids)
        if isinstance(parts_or_error, ApiError):
            error = {"error": {"code": parts_or_error.status, "message": parts_or_error.message,
                               "status": parts_or_error.error_type}}
            with self._lock:
                self.refused.append({"prompt_key": key, "step": step, **error})
            return parts_or_error.status, error
        if parts_or_error is None:
            # What the CLI's side calls parse: a JSON object (next speaker, routing) as text.
            parts = [{"text": json.dumps({"next_speaker": "user", "reasoning": "done",
                                          "model_choice": "flash"})}]
        else:
            parts = [{"functionCall": {"name": b.name, "args": b.input}} if isinstance(b, ToolCall)
                     else {"text": b.text} for b in parts_or_error]
        # Distinct, recognisable numbers per request so a sum that counts one twice shows.
        answered = Answered(
            response_id=f"resp_{self.run_tag}_{n:04d}", model=model, prompt_key=key, step=step,
            prompt_tokens=5000 + n, cached_tokens=2000 + n, candidates_tokens=40 + n,
            thoughts_tokens=7 + n,
        )
        with self._lock:
            self.answered.append(answered)
        return 200, {
            "candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": answered.prompt_tokens,
                "cachedContentTokenCount": answered.cached_tokens,
                "candidatesTokenCount": answered.candidates_tokens,
                "thoughtsTokenCount": answered.thoughts_tokens,
                "totalTokenCount": answered.total_tokens,
            },
            "modelVersion": model,
            "responseId": answered.response_id,
        }
