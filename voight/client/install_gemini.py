"""`voight install-hooks --gemini`: merge Voight into the Gemini CLI's settings.json.

Two things go in, and nothing else changes: the `telemetry` settings that point the CLI's
OpenTelemetry export at Voight, and command hooks (`voight gemini-hook`) for the events that
only a live channel reports (docs/agents/gemini-cli.md). Like `voight install-hooks` for
Claude Code, each run first removes every hook handler that is ours, then adds the current
set, so running it twice gives the same file; the file is backed up before it changes.

The key stays out of the file: the CLI's settings have no exporter header, so its telemetry
reads OTEL_EXPORTER_OTLP_HEADERS from the environment, and the hook reads the same variable.
"""

import json
import os
import shlex
import sys
from urllib.parse import quote

from voight.client import fs

# BeforeTool, so a paused agent's call is denied; the others mark the session's start, each
# turn's start and end and its end as they happen. Once per turn or rarer, except BeforeTool.
EVENTS = ("SessionStart", "BeforeAgent", "BeforeTool", "AfterAgent", "Notification", "SessionEnd")
HOOK_TIMEOUT_MS = 5000  # our own budget is VOIGHT_TIMEOUT (1.5 s) plus start-up
HOOK_NAME = "voight"
# Telemetry settings that would send the export elsewhere than the OTLP endpoint.
DIVERTING = ("outfile", "useCollector", "useCliAuth")


def settings_path(project: bool, cwd: str | None = None) -> str:
    if project:
        return os.path.join(cwd or os.getcwd(), ".gemini", "settings.json")
    return os.path.join(os.path.expanduser("~"), ".gemini", "settings.json")


def hook_command(url: str, agent: str | None) -> str:
    """This interpreter by absolute path with `-S`, as `voight install-hooks` does (a version
    manager's shim and `site` cost tens of milliseconds per call)."""
    main = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
    command = (f"{shlex.quote(sys.executable)} -S {shlex.quote(main)} gemini-hook"
               f" --url {shlex.quote(url)}")
    return command + (f" --agent {shlex.quote(agent)}" if agent else "")


def is_ours(handler) -> bool:
    if not isinstance(handler, dict):
        return False
    return " gemini-hook" in str(handler.get("command", "")) and "voight" in str(
        handler.get("command", ""))


def otlp_endpoint(url: str, agent: str | None) -> str:
    # The CLI appends /v1/logs ... to the path and keeps the query: `?agent=` names the agent
    # for the export as the hook's own `?agent=` does, so both land in one session.
    return f"{url}/v1/otlp" + (f"?agent={quote(agent, safe='')}" if agent else "")


def merge(settings: dict, *, url: str, agent: str | None) -> dict:
    """`settings` with our telemetry and hooks in place of any earlier ones (input kept)."""
    out = json.loads(json.dumps(settings))
    telemetry = out.get("telemetry") if isinstance(out.get("telemetry"), dict) else {}
    for name in DIVERTING:
        telemetry.pop(name, None)
    telemetry.update({"enabled": True, "target": "local", "otlpProtocol": "http",
                      "otlpEndpoint": otlp_endpoint(url, agent)})
    telemetry.setdefault("logPrompts", True)
    out["telemetry"] = telemetry

    hooks = out.get("hooks") if isinstance(out.get("hooks"), dict) else {}
    for event in list(hooks):
        groups = hooks[event] if isinstance(hooks[event], list) else []
        kept = []
        for group in groups:
            handlers = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(handlers, list) or not any(is_ours(h) for h in handlers):
                kept.append(group)
            elif not all(is_ours(h) for h in handlers):
                kept.append({**group, "hooks": [h for h in handlers if not is_ours(h)]})
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    command = hook_command(url, agent)
    for event in EVENTS:
        hooks.setdefault(event, []).append({"hooks": [{
            "type": "command", "name": HOOK_NAME, "command": command,
            "timeout": HOOK_TIMEOUT_MS,
        }]})
    out["hooks"] = hooks
    return out


def write(path: str, *, url: str, agent: str | None) -> tuple[bool, str | None]:
    """Write the merged settings. Returns (changed, backup path)."""
    current: dict = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        current = json.loads(text) if text.strip() else {}
        if not isinstance(current, dict):
            raise ValueError(f"{path} does not hold a JSON object")
    merged = merge(current, url=url, agent=agent)
    if merged == current:
        return False, None
    backup = fs.replace_backed_up(path, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    return True, backup


def run(args) -> int:
    from voight.client import config

    if args.http:
        print("voight install-hooks: --gemini takes no --http (the Gemini CLI has command hooks "
              "only)", file=sys.stderr)
        return 2
    url = (args.url or config.url()).rstrip("/")
    agent = args.agent or config.agent()
    path = settings_path(project=args.project)
    try:
        changed, backup = write(path, url=url, agent=agent)
    except (OSError, ValueError) as exc:
        print(f"voight install-hooks: cannot update {path}: {exc}", file=sys.stderr)
        return 1
    if not changed:
        print(f"{path}: Voight telemetry and hooks already installed; nothing changed.")
    else:
        print(f"{path}: installed Voight telemetry and hooks for {len(EVENTS)} events.")
        if backup:
            print(f"  backup of the previous file: {backup}")
    key = args.key if args.key is not None else config.key()
    print("  the Gemini CLI reads the key from its environment; add to your shell profile:")
    print(f"    export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer {key or '<your-ingest-key>'}\"")
    return 0
