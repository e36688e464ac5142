"""Lines added and removed by one file-editing tool call, from its input.

Counted in the adapter, before privacy rules may strip the strings, and stored with the
event (`payload["_voight_lines"]`, read by the `Event.lines_added` / `lines_removed`
generated columns) so analytics sums a column instead of re-reading edit texts.

Lines the old and new strings share are not counted: an Edit whose old_string carries two
lines of context around one changed line adds one line and removes one, the way a line diff
(and Claude Code's own `lines_of_code.count`) counts it. The diff runs on what is left once
the shared first and last lines are trimmed (a longest common subsequence); past `DIFF_LIMIT` line pairs (a hostile or
huge edit) the trimmed sizes are the count, so the cost stays bounded. A Write counts its
content as added; the text it replaced is unknown.
"""

from __future__ import annotations

from typing import Any

PAYLOAD_KEY = "_voight_lines"
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit"})
DIFF_LIMIT = 40_000


def _lines(text: Any) -> list[str]:
    return text.splitlines() if isinstance(text, str) else []


def _changed(old: Any, new: Any) -> tuple[int, int]:
    before, after = _lines(old), _lines(new)
    start = 0
    while start < len(before) and start < len(after) and before[start] == after[start]:
        start += 1
    end = 0
    while (end < len(before) - start and end < len(after) - start
           and before[-1 - end] == after[-1 - end]):
        end += 1
    before, after = before[start:len(before) - end], after[start:len(after) - end]
    if not before or not after or len(before) * len(after) > DIFF_LIMIT:
        return len(after), len(before)
    kept = _common_lines(before, after)
    return len(after) - kept, len(before) - kept


def _common_lines(before: list[str], after: list[str]) -> int:
    """Length of the longest common subsequence of lines: O(len × len) steps, which
    DIFF_LIMIT bounds (difflib's matcher takes seconds on repeated lines)."""
    previous = [0] * (len(after) + 1)
    for line in before:
        current = [0]
        for index, other in enumerate(after):
            current.append(previous[index] + 1 if line == other
                           else max(previous[index + 1], current[index]))
        previous = current
    return previous[-1]


def edit_lines(tool_name: str, tool_input: Any) -> tuple[int, int] | None:
    """(added, removed) for Edit, Write and MultiEdit inputs; None for any other tool or an
    input of the wrong shape."""
    if tool_name not in EDIT_TOOLS or not isinstance(tool_input, dict):
        return None
    if tool_name == "Write":
        return len(_lines(tool_input.get("content"))), 0
    if tool_name == "Edit":
        return _changed(tool_input.get("old_string"), tool_input.get("new_string"))
    edits = tool_input.get("edits")
    if not isinstance(edits, list):
        return None
    added = removed = 0
    for edit in edits:
        if isinstance(edit, dict):
            a, r = _changed(edit.get("old_string"), edit.get("new_string"))
            added, removed = added + a, removed + r
    return added, removed


def with_edit_lines(payload: dict, tool_name: str, tool_input: Any) -> dict:
    """The payload with its call's line counts, when it has any."""
    counted = edit_lines(tool_name, tool_input)
    if counted is None:
        return payload
    return {**payload, PAYLOAD_KEY: {"added": counted[0], "removed": counted[1]}}
