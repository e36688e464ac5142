"""Settings from the environment and the on-disk places every command agrees on.

Functions rather than module constants so tests and the SDK see the environment as it is at
call time. `tempdir()` mirrors `tempfile.gettempdir()`'s lookup without importing `tempfile`
(about 20 ms of imports: random, shutil, ...), because the trace files live there.
"""

import os

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 1.5
PRIVACY_LEVELS = ("minimal", "standard", "full")


def url() -> str:
    return (os.environ.get("VOIGHT_URL") or DEFAULT_URL).strip().rstrip("/")


def key() -> str:
    return os.environ.get("VOIGHT_KEY", "").strip()


def otlp_headers() -> str:
    """OTEL_EXPORTER_OTLP_HEADERS: `name=value,…`, where the Gemini CLI's users keep the key."""
    return os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")


def agent() -> str | None:
    return os.environ.get("VOIGHT_AGENT", "").strip() or None


def privacy_level() -> str:
    level = os.environ.get("VOIGHT_PRIVACY", "").strip().lower()
    return level if level in PRIVACY_LEVELS else "standard"


def timeout() -> float:
    """Total time one hook call may spend talking to the server (connect + send + answer)."""
    return _positive_float("VOIGHT_TIMEOUT", DEFAULT_TIMEOUT)


def heartbeat_interval() -> float:
    return _positive_float("VOIGHT_HEARTBEAT", 60.0)


def tempdir() -> str:
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name)
        if value:
            return os.path.abspath(value)
    if os.name == "nt":  # pragma: no cover - Windows keeps its temp dir elsewhere
        import tempfile

        return tempfile.gettempdir()
    return "/tmp"


def state_dir() -> str:
    """Per-session trace ids, pending wakeups and transcript offsets (the seed's location)."""
    return os.path.join(tempdir(), "voight-traces")


def spool_dir() -> str:
    return os.environ.get("VOIGHT_SPOOL_DIR") or os.path.join(tempdir(), "voight-spool")


def _positive_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default
