"""The Agents page's "Connect an agent" section: one tab of copy-paste setup per kind of agent.

Each tab is the partial `templates/sessions/partials/connect_<key>.html`, rendered with the
server's URL (`server`), the agent id the visitor typed (`agent`) and the snippets built
here. Adding a kind is one line in `TABS` once its partial exists.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from urllib.parse import quote

KEY_PLACEHOLDER = "<ingest key>"


@dataclasses.dataclass(frozen=True)
class ConnectTab:
    key: str  # the partial's name, and the `?connect=` value that opens the tab
    label: str

    @property
    def template(self) -> str:
        return f"sessions/partials/connect_{self.key}.html"


TABS = (
    ConnectTab("claude_code", "Claude Code"),
    ConnectTab("cursor", "Cursor"),
    ConnectTab("codex", "Codex CLI"),
    ConnectTab("gemini", "Gemini CLI"),
    ConnectTab("otel", "OpenTelemetry"),
)
# Cursor's hooks, in the order Voight reads them (ingest.adapters.cursor.HOOK_TYPES).
CURSOR_HOOKS = (
    "sessionStart", "beforeSubmitPrompt", "preToolUse", "postToolUse", "postToolUseFailure",
    "beforeShellExecution", "afterShellExecution", "beforeMCPExecution", "afterMCPExecution",
    "beforeReadFile", "afterFileEdit", "afterAgentResponse", "afterAgentThought", "stop",
    "sessionEnd",
)


def tab_for(value: str | None) -> ConnectTab:
    """The tab `?connect=` names, else the first."""
    return next((tab for tab in TABS if tab.key == value), TABS[0])


def claude_code_settings(server: str, agent: str) -> str:
    """The Claude Code settings that connect an agent: http hooks, the `voight hook` command
    for SessionStart (Claude Code accepts only command hooks there) and the OTel env.

    Built by the same merge as `voight install-hooks --http`, so the page and the installer
    never disagree; the command is the portable `voight hook` and the key a placeholder."""
    from voight.client import install

    settings = install.merge({}, http=True, url=server, key=KEY_PLACEHOLDER, agent=agent)
    for groups in settings["hooks"].values():
        for group in groups:
            for handler in group["hooks"]:
                if handler.get("type") == "command":
                    handler["command"] = "voight hook"
    return json.dumps(settings, indent=2)


def cursor_hooks(server: str, agent: str) -> str:
    """`.cursor/hooks.json`: every hook pipes its JSON to Voight with curl. Cursor reads the
    hook's answer from stdout, so a paused agent's before-hooks are denied by Voight's."""
    url = f"{server}/v1/hooks/cursor?agent={quote(agent, safe='')}"
    command = (
        'curl -sS --max-time 5 -H "Authorization: Bearer $VOIGHT_KEY" '
        f"-H 'Content-Type: application/json' --data-binary @- {shlex.quote(url)}"
    )
    hooks = {name: [{"command": command}] for name in CURSOR_HOOKS}
    return json.dumps({"version": 1, "hooks": hooks}, indent=2)


def otel_environment(server: str, agent: str) -> str:
    """The standard OpenTelemetry exporter variables, for any SDK and any GenAI
    instrumentation (docs/agents/otel-genai.md)."""
    lines = [
        f"export OTEL_SERVICE_NAME={shlex.quote(agent)}",
        f"export OTEL_EXPORTER_OTLP_ENDPOINT={shlex.quote(server + '/v1/otlp')}",
        'export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer $VOIGHT_KEY"',
        "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf   # or http/json",
        "export OTEL_TRACES_EXPORTER=otlp OTEL_LOGS_EXPORTER=otlp OTEL_METRICS_EXPORTER=otlp",
        "# Optional: the current GenAI conventions, and message text (prompts, replies)",
        "export OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental",
        "export OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true",
        "# Optional: keep names, timings and outcomes only (no text) in Voight",
        "# export OTEL_RESOURCE_ATTRIBUTES=voight.privacy_level=minimal",
    ]
    return "\n".join(lines)


def connect_context(server: str, agent: str, selected: str | None) -> dict:
    """What the connect section's template needs."""
    return {
        "server": server, "agent": agent, "connect_tabs": TABS,
        "connect_selected": tab_for(selected).key, "key_placeholder": KEY_PLACEHOLDER,
        "claude_code_snippet": claude_code_settings(server, agent),
        "cursor_snippet": cursor_hooks(server, agent),
        "otel_snippet": otel_environment(server, agent),
    }
