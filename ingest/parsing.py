"""Turning a request body into JSON, or into a clear 4xx.

Every whole-body problem is a `BodyError` carrying its HTTP status and message; nothing here
touches the database, so a rejected body can never cause a partial write.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson  # twice as fast as json on a batch; json reads what it cannot (`_loads`)
from django.conf import settings

REPLACEMENT = "\ufffd"


class BodyError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_float(text: str) -> float | str:
    value = float(text)
    # 1e400 parses to inf, which neither JSONB nor JSON itself can hold: keep the digits.
    return value if math.isfinite(value) else text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def clean_text(value: str) -> str:
    """Replace NUL (PostgreSQL rejects it in text and JSONB) and lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # only lone surrogates fail; JSON pairs decode to one char
        value = "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


# In valid JSON text a NUL or a lone surrogate can only be written as a \u escape (raw control
# characters are refused by the parser; UTF-8 cannot encode a surrogate). A body without such
# an escape needs no cleaning, only the depth check.
_NEEDS_CLEANING = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def check_depth(value: Any, max_depth: int) -> Any:
    """`value` itself, or BodyError past max_depth (iterative, over containers only).

    Level by level: each pass is one comprehension over the containers of one depth, which
    costs less per node than a stack of (node, depth) pairs."""
    if type(value) is not dict and type(value) is not list:
        return value
    level, depth = [value], 1
    while level:
        if depth > max_depth:
            raise BodyError(400, f"JSON is nested deeper than {max_depth} levels")
        # json.loads and orjson make exactly dict and list
        level = [child for node in level
                 for child in (node.values() if type(node) is dict else node)
                 if type(child) is dict or type(child) is list]
        depth += 1
    return value


def clean_json(value: Any, max_depth: int) -> Any:
    """Copy of `value` with every string and key cleaned; raises BodyError past max_depth.

    Iterative, so hostile nesting cannot exhaust the Python stack.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        node, parent, slot, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise BodyError(400, f"JSON is nested deeper than {max_depth} levels")
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, item in node.items():
                clean_key = clean_text(key)
                copy[clean_key] = None
                stack.append((item, copy, clean_key, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise BodyError(400, f"JSON is nested deeper than {max_depth} levels")
            items: list[Any] = [None] * len(node)
            parent[slot] = items
            for index, item in enumerate(node):
                stack.append((item, items, index, depth + 1))
        elif isinstance(node, str):
            parent[slot] = clean_text(node)
        else:
            parent[slot] = node
    return root[0]


def parse_json_body(request) -> Any:
    """The request's JSON body, cleaned, or BodyError (413, 415, 400)."""
    return parse_json_body_text(request)[0]


def parse_json_body_text(request) -> tuple[Any, str]:
    """`parse_json_body`, and the JSON text of what it returns: the body's own text when it
    needed no cleaning (a staged hook keeps it as sent, with no second serialisation),
    else the cleaned value written out. `load_json_text` reads either back equal."""
    limit = settings.VOIGHT_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type and content_type not in ("application/json", "text/plain") and not (
        content_type.endswith("+json")
    ):
        raise BodyError(415, f"content type {content_type!r} is not JSON; send application/json")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise BodyError(413, f"body is larger than {limit} bytes")
    return _parse(raw)


def parse_json_bytes(raw: bytes) -> Any:
    return _parse(raw)[0]


def load_json_text(text: str) -> Any:
    """JSON text written by `parse_json_body_text`, read as the request read it (a float
    beyond range stays its digits)."""
    return json.loads(text, parse_float=_parse_float, parse_constant=_reject_constant)


# orjson reads every valid JSON text as json does except integers past 64 bits (it makes
# them floats): a body with a run of 19 digits or more goes to json. What orjson refuses
# (a number beyond a double, NaN, a lone surrogate, deep nesting, bad JSON) goes to json too,
# which reads it as before or gives its message.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _loads(raw: bytes, text: str) -> Any:
    if raw.translate(_DIGITS).find(_LONG_NUMBER) < 0:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text, parse_float=_parse_float, parse_constant=_reject_constant)


def _parse(raw: bytes) -> tuple[Any, str]:
    if not raw.strip():
        raise BodyError(400, "body is empty; send JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = _loads(raw, text)
    except RecursionError:
        raise BodyError(
            400, f"JSON is nested deeper than {settings.VOIGHT_MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise BodyError(400, f"body is not valid JSON: {exc}") from None
    if _NEEDS_CLEANING.search(text):
        data = clean_json(data, settings.VOIGHT_MAX_JSON_DEPTH)
        return data, json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    depth = settings.VOIGHT_MAX_JSON_DEPTH
    if text.count("{") + text.count("[") <= depth:  # no deeper than it has containers
        return data, text
    return check_depth(data, depth), text
