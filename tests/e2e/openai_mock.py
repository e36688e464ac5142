"""A scripted stand-in for the OpenAI Responses API, for driving the real `codex` CLI.

The CLI is pointed here by a custom `model_provider` in `$CODEX_HOME/config.toml` (its
`base_url` is this server's `/v1`, `wire_api = "responses"`). Each `POST /v1/responses` is
answered from a script chosen by the turn's prompt: the script is a list of steps, one per
model request of that turn, each a list of output items (text, or a tool call the CLI then
runs). The step is how many tool outputs follow the prompt in the request's `input`, so the
CLI's tool results drive the turn forward as with the real API.

Every answered request is recorded with the usage it reported, so tests compare Voight's
tokens and cost with what the "API" said, exactly. OpenAI's usage counts cached tokens
inside `input_tokens` and reasoning tokens inside `output_tokens`; the numbers here have
both, so a mapping that forgets either shows.
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
    arguments: dict


@dataclasses.dataclass
class Answered:
    """One model request the mock answered: what it said it used."""

    response_id: str
    model: str
    prompt_key: str  # the script that answered ("" for a request outside any script)
    step: int
    input_tokens: int  # all input, cached included (OpenAI's meaning)
    cached_tokens: int
    output_tokens: int  # all output, reasoning included (OpenAI's meaning)
    reasoning_tokens: int
    call_ids: list[str]

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_tokens


def _texts(item: dict) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "\n".join(parts)


class OpenAIMock:
    """`scripts` maps a phrase of the prompt to the steps of that turn's answer."""

    def __init__(self, scripts: dict[str, list[list[Text | ToolCall]]], *, run_tag: str,
                 model: str = "gpt-5-codex"):
        self.scripts = scripts
        self.run_tag = run_tag
        self.model = model
        self.answered: list[Answered] = []
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

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                mock._record(self.command, self.path, None)
                if self.path.split("?")[0].endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": []}).encode(),
                               "application/json")
                else:
                    self._send(404, b'{"error":{"message":"not found"}}', "application/json")

            def do_POST(self):
                body = self._body()
                mock._record(self.command, self.path, body)
                if self.path.split("?")[0].endswith("/responses") and isinstance(body, dict):
                    self._send(200, mock.answer(body), "text/event-stream")
                else:
                    self._send(404, b'{"error":{"message":"not found"}}', "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, method: str, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body})

    def _turn(self, items: list) -> tuple[str, int]:
        """(script key, step): the last user message naming a script, and how many tool
        outputs follow it."""
        for index in range(len(items) - 1, -1, -1):
            item = items[index]
            if not isinstance(item, dict) or item.get("role") != "user":
                continue
            text = _texts(item)
            found = [(text.rfind(key), key) for key in self.scripts if key in text]
            if found:
                later = items[index + 1:]
                return max(found)[1], sum(
                    1 for i in later if isinstance(i, dict)
                    and i.get("type") in ("function_call_output", "custom_tool_call_output"))
        return "", 0

    def answer(self, body: dict) -> bytes:
        items = body.get("input") if isinstance(body.get("input"), list) else []
        key, step = self._turn(items)
        steps = self.scripts.get(key)
        blocks = steps[min(step, len(steps) - 1)] if steps else [Text("ok")]
        with self._lock:
            n = next(self._ids)
        model = str(body.get("model") or self.model)
        response_id = f"resp_{self.run_tag}_{n:04d}"
        output, call_ids = [], []
        for i, block in enumerate(blocks):
            if isinstance(block, ToolCall):
                call_id = f"call_{self.run_tag}_{n:04d}_{i}"
                call_ids.append(call_id)
                output.append({"type": "function_call", "id": f"fc_{self.run_tag}_{n:04d}_{i}",
                               "status": "completed", "name": block.name, "call_id": call_id,
                               "arguments": json.dumps(block.arguments)})
            else:
                output.append({"type": "message", "id": f"msg_{self.run_tag}_{n:04d}_{i}",
                               "status": "completed", "role": "assistant",
                               "content": [{"type": "output_text", "text": block.text,
                                            "annotations": []}]})
        # Distinct, recognisable numbers per request so a sum that counts one twice shows.
        record = Answered(
            response_id=response_id, model=model, prompt_key=key, step=step,
            input_tokens=5000 + n, cached_tokens=3000 + n, output_tokens=300 + n,
            reasoning_tokens=100 + n, call_ids=call_ids,
        )
        with self._lock:
            self.answered.append(record)
        usage = {
            "input_tokens": record.input_tokens,
            "input_tokens_details": {"cached_tokens": record.cached_tokens},
            "output_tokens": record.output_tokens,
            "output_tokens_details": {"reasoning_tokens": record.reasoning_tokens},
            "total_tokens": record.input_tokens + record.output_tokens,
        }
        return _sse(response_id, model, output, usage)


def _event(data: dict) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"


def _sse(response_id: str, model: str, output: list, usage: dict) -> bytes:
    """The stream the Responses API sends: created, each item added/delta/done, completed."""
    base = {"id": response_id, "object": "response", "model": model}
    out = [_event({"type": "response.created", "sequence_number": 0,
                   "response": {**base, "status": "in_progress", "output": []}})]
    seq = itertools.count(1)
    for index, item in enumerate(output):
        out.append(_event({"type": "response.output_item.added", "sequence_number": next(seq),
                           "output_index": index, "item": {**item, "status": "in_progress"}}))
        if item["type"] == "message":
            out.append(_event({"type": "response.output_text.delta",
                               "sequence_number": next(seq), "item_id": item["id"],
                               "output_index": index, "content_index": 0,
                               "delta": item["content"][0]["text"]}))
        out.append(_event({"type": "response.output_item.done", "sequence_number": next(seq),
                           "output_index": index, "item": item}))
    out.append(_event({"type": "response.completed", "sequence_number": next(seq),
                       "response": {**base, "status": "completed", "output": output,
                                    "usage": usage}}))
    return "".join(out).encode()
