"""Event ids, trace ids and timestamps without `uuid`/`datetime`: both are cheap to build from
`os.urandom` and `time`, and every millisecond of import time is paid on each hook call."""

import os
import time

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def uuid4() -> str:
    """A random RFC 4122 version-4 UUID string, as `str(uuid.uuid4())` would give."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if not n:
            return out


def new_trace_id(now: float) -> str:
    """`t_<base36 ms timestamp>_<8 hex>`, the format the Voight seed documents."""
    return f"t_{base36(int(now * 1000))}_{os.urandom(4).hex()}"


def rfc3339(t: float) -> str:
    """UTC with milliseconds, e.g. `2026-08-22T10:40:00.123Z`."""
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"
