"""`voight gemini-hook`: the Gemini CLI command hook.

Reads one hook JSON on stdin and posts it as it is to `/v1/hooks/gemini-cli`, which answers
with what the Gemini CLI reads on stdout: `{}`, or for a BeforeTool of a paused agent
`{"decision": "deny", "reason": …}` (the CLI then does not run the tool and tells the model
why). It must never hurt the agent: one time budget, exit 0 and `{}` on any failure.

The Gemini CLI's settings have no place for an exporter header, so its telemetry takes the key
from OTEL_EXPORTER_OTLP_HEADERS (`Authorization=Bearer <key>`); this hook reads the same
variable when VOIGHT_KEY is not set, so one exported variable serves both channels.
Nothing is spooled: the CLI's telemetry reports the work, the hooks only the live state.
"""

import os
import sys

from voight.client import config, jsonlite, transport

HOOK_PATH = "/v1/hooks/gemini-cli"
SILENT = "{}"


def main(argv: list[str]) -> int:
    try:
        raw = sys.stdin.buffer.read()
    except (OSError, ValueError):
        raw = b""
    print(answer(raw, _option(argv, "--url") or config.url(), key(),
                 _option(argv, "--agent") or config.agent()))
    return 0


def answer(raw: bytes, url: str, api_key: str, agent: str | None) -> str:
    """What to print for one hook JSON: the server's decision, or `{}`."""
    try:
        payload = jsonlite.loads(raw)
    except ValueError:
        return SILENT
    if not isinstance(payload, dict):
        return SILENT
    target = url.rstrip("/") + HOOK_PATH + (f"?agent={_quote(agent)}" if agent else "")
    try:
        response = transport.post_json(target, api_key, payload, config.timeout())
    except transport.TransportError as exc:
        _debug(f"voight gemini-hook: {exc}")
        return SILENT
    decision = response.json() if response.ok else None
    if isinstance(decision, dict) and decision.get("decision") == "deny":
        return jsonlite.dumps({"decision": "deny", "reason": str(decision.get("reason", ""))})
    if not response.ok:
        _debug(f"voight gemini-hook: {response.status} {response.body[:200]!r}")
    return SILENT


def _quote(text: str) -> str:
    # urllib.parse costs more imports than this hook's whole work; a slug needs no more.
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())


def key() -> str:
    found = config.key()
    if found:
        return found
    for header in config.otlp_headers().split(","):
        name, _, value = header.partition("=")
        value = value.replace("%20", " ").strip()  # the variable's values may be URL-encoded
        if name.strip().lower() == "authorization" and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip()
    return ""


def _option(argv: list[str], name: str) -> str:
    for index, value in enumerate(argv):
        if value == name and index + 1 < len(argv):
            return argv[index + 1].strip()
        if value.startswith(name + "="):
            return value.split("=", 1)[1].strip()
    return ""


def exit_process(code: int):
    """End now, skipping the interpreter's teardown (as `voight hook` does)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _debug(message: str) -> None:
    try:
        print(message, file=sys.stderr)
    except (OSError, ValueError):
        pass
