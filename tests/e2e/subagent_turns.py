"""The scripted subagent turns: the main agent spawns subagents with the `Agent` tool.

The mock tells the subagent's requests from the parent's by the subagent's prompt (its first
user message), which is a script key of its own. Each subagent reads a file that exists
(success) and runs a failing Bash (error), then answers.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.anthropic_mock import Text, ToolCall

PROMPT_SPAWN = "please delegate the inspection"
PROMPT_BACKGROUND = "please delegate in the background"
SUB_PROMPT = "subagent job: inspect notes.txt"
BG_PROMPT = "background job: inspect notes.txt"
SUB_DESCRIPTION = "Inspect the notes"
BG_DESCRIPTION = "Inspect in background"
NOTES = "notes for the subagent\n"


def _subagent_steps(project: Path, answer: str) -> list:
    return [
        [ToolCall("Read", {"file_path": str(project / "notes.txt")})],
        [ToolCall("Bash", {"command": "false", "description": "A command that fails"})],
        [Text(answer)],
    ]


def scripts(project: Path) -> dict:
    return {
        PROMPT_SPAWN: [
            [Text("Delegating."),
             ToolCall("Agent", {"description": SUB_DESCRIPTION, "prompt": SUB_PROMPT,
                                "subagent_type": "general-purpose"})],
            [Text("The subagent is done.")],
        ],
        SUB_PROMPT: _subagent_steps(project, "Subagent: notes inspected."),
        PROMPT_BACKGROUND: [
            [ToolCall("Agent", {"description": BG_DESCRIPTION, "prompt": BG_PROMPT,
                                "subagent_type": "general-purpose",
                                "run_in_background": True})],
            [Text("Started it in the background.")],
            [Text("The background agent finished.")],
        ],
        BG_PROMPT: _subagent_steps(project, "Background: notes inspected."),
    }
