"""Small file helpers shared by the trace, transcript and spool state.

Several hook processes run at once (Claude Code starts every matching handler in parallel and
async hooks overlap), so writes are atomic renames and read-modify-write cycles take a lock.
"""

import os
import time

from voight.client import jsonlite


def read_json(path: str, default=None):
    try:
        with open(path, "rb") as f:
            return jsonlite.loads(f.read())
    except (OSError, ValueError):
        return default


def write_atomic(path: str, data: bytes) -> None:
    """Write `data` so readers see the old file or the new one, never a torn one."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_json(path: str, obj) -> None:
    write_atomic(path, jsonlite.dumps(obj).encode())


def remove(path: str) -> None:
    try:  # not contextlib.suppress: importing contextlib costs ~2 ms per hook call
        os.unlink(path)
    except OSError:
        pass


def safe_name(value: str) -> str:
    """A session id as a file name: ids are UUIDs, but never let one escape the directory."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in value)
    return cleaned.lstrip(".")[:200] or "_"


class Lock:
    """An advisory exclusive lock on `path`, released when the process dies.

    `blocking=False` gives up at once (entered value False) instead of waiting.
    """

    def __init__(self, path: str, blocking: bool = True):
        self.path = path
        self.blocking = blocking
        self.fd = None

    def __enter__(self) -> bool:
        try:  # imported here: most hook calls take no lock
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks, races only cost a re-send
            return True
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        flags = fcntl.LOCK_EX if self.blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(self.fd, flags)
        except OSError:
            os.close(self.fd)
            self.fd = None
            return False
        return True

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def backup(path: str) -> str:
    """Copy `path` beside itself with a timestamp (and a counter if that name is taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = f"{path}.bak-{stamp}"
    n = 1
    while os.path.exists(backup):
        n += 1
        backup = f"{path}.bak-{stamp}-{n}"
    with open(path, "rb") as src, open(backup, "wb") as dst:
        dst.write(src.read())
    return backup


def replace_backed_up(path: str, text: str, mode: int | None = None) -> str | None:
    """Replace the user's config file at `path` with `text`: the old one is copied aside
    first (returned), the new one lands by an atomic rename, with `mode` if given."""
    previous = backup(path) if os.path.exists(path) else None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.voight-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    return previous
