"""The scripted turns of the e2e runs: prompts and what the mock model answers to each."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.anthropic_mock import ApiError, Text, ToolCall

PROMPT_A = "please make the file"
PROMPT_B = "now just say hello"
PROMPT_C = "please break the api"
PROMPT_D = "write while paused"
ANSWER_B = "Hello there."
FILE_TEXT = "hello from the e2e test\n"


def scripts(project: Path) -> dict:
    return {
        PROMPT_A: [
            [Text("I'll write it."),
             ToolCall("Write", {"file_path": str(project / "hello.txt"), "content": FILE_TEXT})],
            [ToolCall("Bash", {"command": "false", "description": "A command that fails"})],
            [ToolCall("Read", {"file_path": str(project / "hello.txt")})],
            [Text("Done: wrote hello.txt.")],
        ],
        PROMPT_B: [[Text(ANSWER_B)]],
        PROMPT_C: [ApiError(400, "invalid_request_error", "e2e: this request is refused")],
        PROMPT_D: [
            [ToolCall("Write", {"file_path": str(project / "paused.txt"), "content": "no\n"})],
            [Text("The write was denied.")],
        ],
    }
