"""`voight install-hooks`: merge Voight into Claude Code's settings.json, idempotently.

Claude Code merges hooks from every settings file and runs all matching handlers, so we only
ever touch our own handlers: each run first removes every handler that is ours (recognised by
its command or URL, whatever options an earlier run used), then adds the current set. Running
it twice gives the same file; the user's other hooks and settings are left as they were. The
file is backed up before it is changed, and not written at all when nothing would change.

Command hooks call this interpreter by absolute path with `-S` and the package's __main__.py:
a version manager's shim costs tens of milliseconds per call and `site` another ~15 ms.
"""

import contextlib
import json
import os
import shlex
import sys

from voight.client import fs

EVENTS = (
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
    "PermissionRequest", "Notification", "SubagentStart", "SubagentStop", "PreCompact",
    "PostCompact", "Stop", "StopFailure", "SessionEnd",
    # Agent teams: a teammate's tasks and idling become its node of the subagent tree.
    "TaskCreated", "TaskCompleted", "TeammateIdle",
)
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"})
# Synchronous on purpose: PreToolUse so a paused agent's exit 2 can block the call;
# UserPromptSubmit so the new trace id is on disk before the turn's first tool event;
# Stop/StopFailure/SessionEnd because they carry the turn's token usage and `claude -p` kills
# async hooks still running at teardown. All are once per turn or rarer, except PreToolUse.
# PermissionRequest: its answer may be a team member's decision (Voight's approval queue).
SYNC_EVENTS = frozenset({"PreToolUse", "UserPromptSubmit", "Stop", "StopFailure", "SessionEnd",
                         "PermissionRequest"})
COMMAND_ONLY = frozenset({"SessionStart"})  # Claude Code accepts no http hooks there
HOOK_TIMEOUT = 5  # seconds; our own budget is VOIGHT_TIMEOUT (1.5 s) plus start-up
HTTP_PATH = "/v1/hooks/claude-code"
# A PermissionRequest may wait for a team member's answer (Voight's approval queue): its
# endpoint holds the request up to the team's timeout, which must stay below this one.
APPROVAL_PATH = "/v1/approvals/claude-code"
APPROVAL_HOOK_TIMEOUT = 300  # seconds
# Hooks that may wait for a member: a PermissionRequest, and (the hook client only) a
# PreToolUse of a tool the team asks about. Their own budget stays 1.5 s otherwise.
HELD_EVENTS = frozenset({"PermissionRequest", "PreToolUse"})


def settings_path(project: bool, cwd: str | None = None) -> str:
    if project:
        return os.path.join(cwd or os.getcwd(), ".claude", "settings.json")
    base = os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")
    return os.path.join(base, "settings.json")


def hook_command() -> str:
    main = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
    return f"{shlex.quote(sys.executable)} -S {shlex.quote(main)} hook"


def is_ours(handler) -> bool:
    if not isinstance(handler, dict):
        return False
    if handler.get("type") == "http":
        return any(p in str(handler.get("url", "")) for p in (HTTP_PATH, APPROVAL_PATH))
    command = str(handler.get("command", "")).strip()
    return "voight" in command and command.endswith(" hook")


def merge(settings: dict, *, http: bool, url: str, key: str, agent: str | None,
          approvals_url: str | None = None) -> dict:
    """`settings` with our hooks and env in place of any earlier ones (input not modified).
    `approvals_url`: where http PermissionRequest hooks go (default `url`; the proxy routes
    `/v1/approvals/` to Voight's ASGI process)."""
    out = json.loads(json.dumps(settings))
    hooks = out.get("hooks") if isinstance(out.get("hooks"), dict) else {}
    for event in list(hooks):
        groups = hooks[event] if isinstance(hooks[event], list) else []
        kept = []
        for group in groups:
            handlers = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(handlers, list):
                kept.append(group)
                continue
            mine = [h for h in handlers if is_ours(h)]
            if not mine:
                kept.append(group)
            elif len(mine) < len(handlers):
                kept.append({**group, "hooks": [h for h in handlers if not is_ours(h)]})
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    for event in EVENTS:
        group: dict = {"matcher": "*"} if event in TOOL_EVENTS else {}
        group["hooks"] = [_handler(event, http=http, url=url, agent=agent,
                                   approvals_url=approvals_url)]
        hooks.setdefault(event, []).append(group)
    out["hooks"] = hooks

    env = out.get("env") if isinstance(out.get("env"), dict) else {}
    env["VOIGHT_URL"] = url
    if key:
        env["VOIGHT_KEY"] = key
    if agent:
        env["VOIGHT_AGENT"] = agent
    if approvals_url:
        env["VOIGHT_APPROVALS_URL"] = approvals_url
    if http:
        env.update({
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"{url}/v1/otlp",
        })
        if key:
            env["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer {key}"
    out["env"] = env
    return out


def _handler(event: str, *, http: bool, url: str, agent: str | None,
             approvals_url: str | None = None) -> dict:
    timeout = APPROVAL_HOOK_TIMEOUT if event in HELD_EVENTS else HOOK_TIMEOUT
    if http and event not in COMMAND_ONLY:
        if event == "PermissionRequest":
            target = f"{approvals_url or url}{APPROVAL_PATH}"
        else:
            target = f"{url}{HTTP_PATH}"
        return {
            "type": "http",
            "url": target + (f"?agent={agent}" if agent else ""),
            "headers": {"Authorization": "Bearer $VOIGHT_KEY"},
            "allowedEnvVars": ["VOIGHT_KEY"],
            "timeout": APPROVAL_HOOK_TIMEOUT if event == "PermissionRequest" else HOOK_TIMEOUT,
        }
    handler = {"type": "command", "command": hook_command(), "timeout": timeout}
    if event not in SYNC_EVENTS:
        handler["async"] = True
    return handler


def install(
    path: str, *, http: bool, url: str, key: str, agent: str | None,
    approvals_url: str | None = None,
) -> tuple[bool, str | None]:
    """Write the merged settings. Returns (changed, backup path)."""
    current: dict = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        current = json.loads(text) if text.strip() else {}
        if not isinstance(current, dict):
            raise ValueError(f"{path} does not hold a JSON object")
    merged = merge(current, http=http, url=url, key=key, agent=agent,
                   approvals_url=approvals_url)
    if merged == current:
        return False, None
    backup = fs.replace_backed_up(path, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    return True, backup


def our_handlers(path: str) -> dict[str, list[dict]]:
    """Our handlers in the settings file at `path`, by event (for doctor)."""
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, ValueError):
        return {}
    hooks = settings.get("hooks") if isinstance(settings, dict) else None
    found: dict[str, list[dict]] = {}
    for event, groups in (hooks.items() if isinstance(hooks, dict) else ()):
        for group in groups if isinstance(groups, list) else ():
            handlers = group.get("hooks") if isinstance(group, dict) else None
            for handler in handlers if isinstance(handlers, list) else ():
                if is_ours(handler):
                    found.setdefault(event, []).append(handler)
    return found


def _precompile() -> None:
    # Hooks may run with PYTHONDONTWRITEBYTECODE set; bytecode written now is still read then,
    # which saves compiling our modules on every call.
    import compileall

    compileall.compile_dir(os.path.dirname(os.path.abspath(__file__)), quiet=2)
    compileall.compile_file(
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "__init__.py"),
        quiet=2,
    )


def run(args) -> int:
    from voight.client import config

    url = (args.url or config.url()).rstrip("/")
    key = args.key if args.key is not None else config.key()
    agent = args.agent or config.agent()
    if getattr(args, "codex", False):
        from voight.client import codex

        return codex.install_command(url, key, agent)
    path = settings_path(project=args.project)
    try:
        approvals_url = (getattr(args, "approvals_url", None) or "").rstrip("/") or None
        changed, backup = install(path, http=args.http, url=url, key=key, agent=agent,
                                  approvals_url=approvals_url)
    except (OSError, ValueError) as exc:
        print(f"voight install-hooks: cannot update {path}: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):
        _precompile()
    kind = "http hooks + OpenTelemetry" if args.http else "command hooks"
    if not changed:
        print(f"{path}: Voight {kind} already installed; nothing changed.")
    else:
        print(f"{path}: installed Voight {kind} for {len(EVENTS)} events.")
        if backup:
            print(f"  backup of the previous file: {backup}")
    print(f"  PermissionRequest waits up to {APPROVAL_HOOK_TIMEOUT} s for a team member's answer "
          "(teams with approvals on); a team's approval timeout must stay below it.")
    if not key:
        print("  note: no key (--key or VOIGHT_KEY): events are spooled until one is set.")
    elif args.project:
        print("  note: the API key is stored in this project's settings.json; don't commit it.")
    return 0
