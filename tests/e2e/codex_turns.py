"""The scripted turns of the Codex e2e runs: prompts and what the mock model answers."""

from __future__ import annotations

from tests.e2e.openai_mock import Text, ToolCall

PROMPT_A = "please make the file"
PROMPT_B = "now just say hello"
ANSWER_A = "Done: wrote hello.txt."
ANSWER_B = "Hello there."
FILE_TEXT = "hello from codex\n"
SHELL = "exec_command"  # Codex 0.171.0's shell tool (unified exec)


def scripts() -> dict:
    return {
        # A: a command that succeeds, one that fails (exit 1), then the answer.
        PROMPT_A: [
            [Text("I'll write it."),
             ToolCall(SHELL, {"cmd": f"printf '{FILE_TEXT.strip()}\\n' > hello.txt"})],
            [ToolCall(SHELL, {"cmd": "false"})],
            [Text(ANSWER_A)],
        ],
        # B (`exec resume`): a text answer, no tools.
        PROMPT_B: [[Text(ANSWER_B)]],
    }
