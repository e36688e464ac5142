"""JSON through CPython's C accelerator `_json`, without importing the `json` package.

`import json` costs ~8 ms per hook call (measured here: a third of the whole call), because
`json.decoder` and `json.scanner` compile regular expressions at import time and drag in re,
enum, functools and collections. The C scanner and encoder that `json` itself delegates to
need none of that. Output equals `json.dumps(obj, separators=(",", ":"))`; input is parsed
like `json.loads`. Where `_json` is missing or has another interface, we fall back to `json`.
"""

try:
    import _json

    class _Context:
        # The attributes `_json.make_scanner` reads from a JSONDecoder; float/int select the
        # C fast paths for numbers.
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        memo = None

        @staticmethod
        def parse_constant(name: str) -> float:
            return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]

    def _default(obj):
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    _scan = _json.make_scanner(_Context())
    _encode = _json.make_encoder(
        {}, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other interpreters
    _scan = _encode = None

_WS = " \t\n\r"


def loads(data: bytes | str):
    if isinstance(data, (bytes, bytearray)):
        # Not .decode("utf-8-sig"): that codec is one more module to import on every call.
        data = (data[3:] if data[:3] == b"\xef\xbb\xbf" else data).decode("utf-8")
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(data)
    start = len(data) - len(data.lstrip(_WS))
    try:
        obj, end = _scan(data, start)
    except StopIteration:
        raise ValueError("Expecting value") from None
    if data[end:].strip(_WS):
        raise ValueError(f"Extra data at char {end}")
    return obj


def dumps(obj) -> str:
    if _encode is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"))
    return "".join(_encode(obj, 0))
