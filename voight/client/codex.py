"""The OpenAI Codex CLI: `voight codex-notify` and `voight install-hooks --codex`.

Codex runs its `notify` program with one JSON argument when a turn completes
(`agent-turn-complete`: thread id, turn id, cwd, the input messages and the last assistant
message). `voight codex-notify JSON` wraps it as a `codex` event with its own id and time
and the privacy level applied, and posts it to `/v1/ingest` (spooled on failure, like the
hook's events); it always exits 0.

`install-hooks --codex` merges Voight into `$CODEX_HOME/config.toml` (default
`~/.codex/config.toml`): `notify` runs this client, and `[otel]` exports Codex's log events
to `<url>/v1/otlp/v1/logs` with the ingest key. Only those two settings are Voight's; the
rest of the file is kept as written. An earlier `[otel]` table (and its sub-tables) and an
earlier top-level `notify` are replaced — Codex takes one of each — and the file is backed
up first. Our lines sit between marker comments so a second run replaces them in place.
"""

import json
import os
import re
import shlex
import sys
import time

from voight.client import config, fs, ids, jsonlite

BEGIN = "# >>> voight (written by `voight install-hooks --codex`)"
END = "# <<< voight"
NOTIFY_KEYS = frozenset({"type", "thread-id", "turn-id", "cwd", "client"})
OUTPUT_CAP = 2_000
INPUT_CAP = 50_000
HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"'-]+?)\s*\]\]?\s*(?:#.*)?$")
NOTIFY_LINE = re.compile(r"^\s*notify\s*=")


# --- notify ------------------------------------------------------------------------------

OPTIONS = {"--url": "VOIGHT_URL", "--key": "VOIGHT_KEY", "--agent": "VOIGHT_AGENT"}


def notify_main(argv: list[str]) -> int:
    """`voight codex-notify [--url U] [--key K] [--agent A] JSON`: send one notification;
    never fail Codex over it. The options stand in for the environment, which Codex's notify
    program inherits from however Codex was started."""
    args = list(argv)
    while len(args) > 2 and args[0] in OPTIONS:
        name, value = OPTIONS[args[0]], args[1]
        os.environ[name] = value
        del args[:2]
    try:
        payload = jsonlite.loads(args[-1]) if args else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return 0
    try:
        from voight.client import hook

        hook.deliver([notify_event(payload, time.time())],
                     time.monotonic() + config.timeout())
    except Exception as exc:  # never break the agent over observability
        if os.environ.get("VOIGHT_DEBUG"):
            print(f"voight codex-notify: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0


def notify_event(payload: dict, now: float) -> dict:
    """The wrapped `codex` event of one notify payload."""
    level = config.privacy_level()
    event = {"id": ids.uuid4(), "timestamp": ids.rfc3339(now), "source": "codex"}
    agent_id = config.agent()
    if agent_id:
        event["agent_id"] = agent_id
    event["metadata"] = {"privacyLevel": level}
    event["payload"] = _private(payload, level)
    return event


def _private(payload: dict, level: str) -> dict:
    if level == "full":
        return payload
    if level == "minimal":
        return {k: v for k, v in payload.items() if k in NOTIFY_KEYS}
    out = dict(payload)
    message = out.get("last-assistant-message")
    if isinstance(message, str) and len(message) > OUTPUT_CAP:
        out["last-assistant-message"] = (
            f"{message[:OUTPUT_CAP]}…[truncated {len(message) - OUTPUT_CAP} chars]")
    inputs = out.get("input-messages")
    if isinstance(inputs, list):
        out["input-messages"] = [m[:INPUT_CAP] if isinstance(m, str) else m for m in inputs]
    return out


# --- config.toml ---------------------------------------------------------------------------

def config_path() -> str:
    home = os.environ.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")
    return os.path.join(home, "config.toml")


def notify_command(url: str = "", key: str = "", agent: str | None = None) -> list[str]:
    main = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
    command = [sys.executable, "-S", main, "codex-notify"]
    for option, value in (("--url", url), ("--key", key), ("--agent", agent)):
        if value:
            command += [option, value]
    return command


def _quote(value: str) -> str:
    # A JSON string is a valid TOML basic string (raw non-ASCII: TOML has no surrogates).
    return json.dumps(value, ensure_ascii=False)


def voight_lines(url: str, key: str, agent: str | None = None, *,
                 log_user_prompt: bool = True) -> tuple[str, str]:
    """(the top-level `notify` block, the `[otel]` block)."""
    command = ", ".join(_quote(part) for part in notify_command(url, key, agent))
    top = f"{BEGIN}\nnotify = [{command}]\n{END}\n"
    headers = f'{{ "Authorization" = {_quote("Bearer " + key)} }}' if key else "{}"
    otel = (
        f"{BEGIN}\n[otel]\n"
        f"log_user_prompt = {'true' if log_user_prompt else 'false'}\n"
        f"exporter = {{ otlp-http = {{ endpoint = {_quote(url + '/v1/otlp/v1/logs')}, "
        f'protocol = "json", headers = {headers} }} }}\n{END}\n'
    )
    return top, otel


def merge(text: str, url: str, key: str, agent: str | None = None, *,
          log_user_prompt: bool = True) -> tuple[str, list]:
    """`text` (a config.toml) with Voight's notify and [otel] in place of any earlier ones;
    and the notes on what of the user's was replaced."""
    lines = _without_ours(text.splitlines(keepends=True))
    notes: list[str] = []
    lines, removed_notify = _without_top_notify(lines)
    if removed_notify:
        notes.append(f"replaced the earlier notify: {removed_notify.strip()}")
    lines, removed_otel = _without_table(lines, "otel")
    if removed_otel:
        notes.append("replaced the earlier [otel] table")
    top, otel = voight_lines(url, key, agent, log_user_prompt=log_user_prompt)
    first_table = next((i for i, line in enumerate(lines) if HEADER.match(line)), len(lines))
    head = "".join(lines[:first_table]).rstrip("\n")
    tail = "".join(lines[first_table:]).strip("\n")
    parts = [part for part in (head, top.rstrip("\n"), tail, otel.rstrip("\n")) if part]
    return "\n\n".join(parts) + "\n", notes


def _without_ours(lines: list[str]) -> list[str]:
    out, inside = [], False
    for line in lines:
        if line.startswith(BEGIN):
            inside = True
            continue
        if inside:
            inside = not line.startswith(END)
            continue
        out.append(line)
    # The blank line our blocks were separated by.
    text = "".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).splitlines(keepends=True)


def _without_top_notify(lines: list[str]) -> tuple[list[str], str]:
    """Lines without a top-level `notify = [...]` (which may span lines)."""
    for index, line in enumerate(lines):
        if HEADER.match(line):
            break
        if NOTIFY_LINE.match(line):
            end, depth = index, 0
            for end in range(index, len(lines)):
                depth += lines[end].count("[") - lines[end].count("]")
                if depth <= 0:
                    break
            removed = "".join(lines[index:end + 1])
            return lines[:index] + lines[end + 1:], removed
    return lines, ""


def _without_table(lines: list[str], name: str) -> tuple[list[str], bool]:
    """Lines without the table `name` and its sub-tables (`[name]`, `[name.x]`)."""
    out, skipping, removed = [], False, False
    for line in lines:
        header = HEADER.match(line)
        if header:
            table = header.group(1).strip("\"'")
            skipping = table == name or table.startswith(name + ".")
            removed = removed or skipping
        if not skipping:
            out.append(line)
    return out, removed


def install(path: str, url: str, key: str,
            agent: str | None = None) -> tuple[bool, str | None, list[str]]:
    """Write the merged config.toml. Returns (changed, backup path, notes)."""
    import tomllib

    current = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            current = f.read()
        tomllib.loads(current)  # refuse to edit a file Codex could not read either
    merged, notes = merge(current, url, key, agent)
    tomllib.loads(merged)
    if merged == current:
        return False, None, []
    backup = fs.replace_backed_up(path, merged, mode=0o600)  # it holds the ingest key
    return True, backup, notes


def install_command(url: str, key: str, agent: str | None = None) -> int:
    import tomllib

    path = config_path()
    try:
        changed, backup, notes = install(path, url, key, agent)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"voight install-hooks --codex: cannot update {path}: {exc}", file=sys.stderr)
        return 1
    if not changed:
        print(f"{path}: Voight notify + OpenTelemetry already installed; nothing changed.")
    else:
        print(f"{path}: installed Voight notify + OpenTelemetry (logs) for the Codex CLI.")
        for note in notes:
            print(f"  {note}")
        if backup:
            print(f"  backup of the previous file: {backup}")
    if not key:
        print("  note: no key (--key or VOIGHT_KEY): Voight will refuse the telemetry.")
    print(f"  notify runs: {shlex.join(notify_command())} …")
    print("  note: the API key is stored in this config.toml; keep the file private.")
    return 0
