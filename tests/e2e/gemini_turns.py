"""The scripted turns of the Gemini CLI e2e runs: prompts and what the mock model answers."""

from __future__ import annotations

from tests.e2e.gemini_mock import ApiError, Text, ToolCall

PROMPT_A = "please make the file"
PROMPT_B = "now just say hello"
PROMPT_C = "please break the api"
PROMPT_D = "write while paused"
ANSWER_A = "Done: wrote hello.txt."
ANSWER_B = "Hello there."


def scripts() -> dict:
    return {
        PROMPT_A: [
            # A tool that succeeds, one that fails (success: false), a shell command that
            # exits non-zero (success, but its result says isError), then the answer.
            [Text("I'll write it."),
             ToolCall("run_shell_command", {"command": "echo hello > hello.txt",
                                            "description": "Write the file"})],
            [ToolCall("read_file", {"file_path": "missing.txt"})],
            [ToolCall("run_shell_command", {"command": "exit 3", "description": "Fail"})],
            [Text(ANSWER_A)],
        ],
        PROMPT_B: [[Text(ANSWER_B)]],
        PROMPT_C: [ApiError(400, "INVALID_ARGUMENT", "e2e: this request is refused")],
        PROMPT_D: [
            [ToolCall("run_shell_command", {"command": "echo no > paused.txt",
                                            "description": "Write while paused"})],
            [Text("The call was denied.")],
        ],
    }
