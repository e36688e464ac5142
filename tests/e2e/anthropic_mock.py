"""A scripted stand-in for the Anthropic Messages API, for driving the real `claude` CLI.

The CLI is pointed here with `ANTHROPIC_BASE_URL`. Each `POST /v1/messages` is answered
from a script chosen by the turn's prompt: the script is a list of steps, one per model
request of that turn, each a list of content blocks (text, or a tool call the CLI then
runs). Steps are picked by how many assistant messages follow the prompt in the request, so
the CLI's own retries and tool results drive the turn forward exactly as with the real API.

Every answered request is recorded with the usage it reported, so tests compare Voight's
tokens and cost with what the "API" said, exactly. Requests outside any script (a title or
topic side-call, a model list, a token count) get small fixed answers and are recorded too.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class Text:
    text: str


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict


@dataclasses.dataclass(frozen=True)
class ApiError:
    """The API refuses the request (a 4xx the CLI does not retry ends the turn)."""

    status: int
    error_type: str
    message: str


@dataclasses.dataclass
class Answered:
    """One model request the mock answered: what it said it used."""

    request_id: str
    message_id: str
    model: str
    prompt_key: str  # the script that answered ("" for a side request)
    step: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    tool_use_ids: list[str]


def _user_text(message: dict) -> str:
    """The prose of a user message (not its tool results)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


class AnthropicMock:
    """`scripts` maps a phrase of the prompt to the steps of that turn's answer."""

    def __init__(self, scripts: dict[str, list[list[Text | ToolCall] | ApiError]], *,
                 run_tag: str):
        self.scripts = scripts
        self.run_tag = run_tag
        self.answered: list[Answered] = []
        self.refused: list[dict] = []  # the ApiError answers given
        # Called as `before_answer[key](step)` before answering a scripted request: a test
        # looks at the server's state while the CLI is mid-turn.
        self.before_answer: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []  # every request: method, path, body
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return None

            def _send(self, status: int, body: bytes, content_type: str, headers=()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                mock._record(self.command, self.path, None)
                path = self.path.split("?")[0]
                if path == "/v1/models":
                    self._send(200, json.dumps({"data": [], "has_more": False}).encode(),
                               "application/json")
                else:
                    self._send(404, b'{"type":"error","error":{"type":"not_found_error"}}',
                               "application/json")

            def do_HEAD(self):
                mock._record(self.command, self.path, None)
                self._send(200, b"", "text/plain")

            def do_POST(self):
                body = self._body()
                mock._record(self.command, self.path, body)
                path = self.path.split("?")[0]
                if path == "/v1/messages/count_tokens":
                    self._send(200, b'{"input_tokens": 100}', "application/json")
                elif path == "/v1/messages" and isinstance(body, dict):
                    status, payload, headers, stream = mock.answer(body)
                    self._send(status, payload,
                               "text/event-stream" if stream else "application/json", headers)
                else:
                    self._send(404, b'{"type":"error","error":{"type":"not_found_error"}}',
                               "application/json")

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

    # --- answering one Messages request ---

    def _turn(self, messages: list) -> tuple[str, int]:
        """(script key, step) for this request, or ("", 0) when no script matches."""
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            text = _user_text(message)
            # After a turn that got no answer (an API error) the CLI sends the next prompt in
            # the same user message: the prompt written last is this turn's.
            found = [(text.rfind(key), key) for key in self.scripts if key in text]
            if found:
                later = messages[index + 1:]
                return max(found)[1], sum(1 for m in later if m.get("role") == "assistant")
        return "", 0

    def answer(self, body: dict) -> tuple[int, bytes, list, bool]:
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        key, step = self._turn(messages)
        # A side request (title, topic, summary) has no tools; it never runs the script.
        if key and not body.get("tools"):
            key = ""
        steps = self.scripts.get(key)
        if key in self.before_answer:
            self.before_answer[key](step)
        blocks = steps[min(step, len(steps) - 1)] if steps else [Text("ok")]
        with self._lock:
            n = next(self._ids)
        if isinstance(blocks, ApiError):
            # 2.1.332 may retry a 400 a few times (with more tools loaded) before it gives up
            # with one StopFailure; every attempt is refused the same way.
            error = {"type": "error", "error": {"type": blocks.error_type,
                                                "message": blocks.message}}
            with self._lock:
                self.refused.append({"prompt_key": key, "step": step, **error})
            return blocks.status, json.dumps(error).encode(), [], False
        model = str(body.get("model") or "claude-sonnet-4-6")
        request_id = f"req_{self.run_tag}_{n:04d}"
        message_id = f"msg_{self.run_tag}_{n:04d}"
        content, tool_ids = [], []
        for i, block in enumerate(blocks):
            if isinstance(block, ToolCall):
                tool_id = f"toolu_{self.run_tag}_{n:04d}_{i}"
                tool_ids.append(tool_id)
                content.append({"type": "tool_use", "id": tool_id, "name": block.name,
                                "input": block.input})
            else:
                content.append({"type": "text", "text": block.text})
        # Distinct, recognisable numbers per request so a sum that counts one twice shows.
        usage = {
            "input_tokens": 1000 + n,
            "cache_creation_input_tokens": 200 + n,
            "cache_read_input_tokens": 3000 + n,
            "output_tokens": 40 + n,
            "cache_creation": {"ephemeral_5m_input_tokens": 200 + n,
                               "ephemeral_1h_input_tokens": 0},
        }
        record = Answered(
            request_id=request_id, message_id=message_id, model=model, prompt_key=key,
            step=step, input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"],
            cache_read_tokens=usage["cache_read_input_tokens"],
            cache_write_tokens=usage["cache_creation_input_tokens"], tool_use_ids=tool_ids,
        )
        with self._lock:
            self.answered.append(record)
        stop_reason = "tool_use" if tool_ids else "end_turn"
        headers = [("request-id", request_id)]
        if not body.get("stream"):
            message = {"id": message_id, "type": "message", "role": "assistant", "model": model,
                       "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                       "usage": usage}
            return 200, json.dumps(message).encode(), headers, False
        return 200, _sse(message_id, model, content, usage, stop_reason), headers, True


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _sse(message_id: str, model: str, content: list, usage: dict, stop_reason: str) -> bytes:
    """The stream the Messages API sends: start (with input usage), blocks, delta, stop."""
    start_usage = {**usage, "output_tokens": 1}
    out = [_event("message_start", {
        "type": "message_start",
        "message": {"id": message_id, "type": "message", "role": "assistant", "model": model,
                    "content": [], "stop_reason": None, "stop_sequence": None,
                    "usage": start_usage},
    })]
    for index, block in enumerate(content):
        if block["type"] == "text":
            out.append(_event("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""}}))
            out.append(_event("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": block["text"]}}))
        else:
            out.append(_event("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"],
                                  "input": {}}}))
            out.append(_event("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta",
                          "partial_json": json.dumps(block["input"])}}))
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(_event("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}}))
    out.append(_event("message_stop", {"type": "message_stop"}))
    return "".join(out).encode()
