"""Events that could not be delivered wait here, one JSON file per failed call.

File names sort in creation order (nanosecond clock, pid, random suffix), so a later call
replays them oldest first. A file is deleted only after the server acknowledged it (2xx/207);
only one process drains at a time (a non-blocking flock), others just skip the replay. The
events keep their own ids and timestamps, so they land late but in their original session and
trace, and a replay after a lost answer is deduplicated by the server.
"""

import os
import time

from voight.client import config, fs, transport

MAX_FILES = 5000  # a long outage must not fill the disk; beyond this the oldest go
SUFFIX = ".json"
REJECTED = ".rejected"
# 4xx answers worth sending again: a timeout, a rate limit, and a bad or revoked key (fixing the
# key delivers them). Every other 4xx -- 400, 413, 415, ... -- would be refused again: such a
# batch is final, never spooled, and a spooled one is set aside for inspection instead of
# being retried forever ahead of everything else.
RETRYABLE_4XX = frozenset({401, 403, 408, 429})


def final(status: int) -> bool:
    """Whether sending the same batch again can never succeed."""
    return 400 <= status < 500 and status not in RETRYABLE_4XX


def save(events: list, directory: str | None = None) -> str:
    directory = directory or config.spool_dir()
    name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}{SUFFIX}"
    path = os.path.join(directory, name)
    fs.write_json(path, events)
    _trim(directory)
    return path


def pending(directory: str | None = None) -> list[str]:
    """Spooled files, oldest first."""
    directory = directory or config.spool_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [
        os.path.join(directory, n)
        for n in sorted(names)
        if n.endswith(SUFFIX) and not n.startswith(".")
    ]


def rejected(directory: str | None = None) -> list[str]:
    directory = directory or config.spool_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.endswith(REJECTED))


def drain(url: str, key: str, deadline: float, directory: str | None = None) -> str:
    """Replay spooled batches in order until done, the server fails, or `deadline` passes.

    Returns "empty" (nothing to do), "done", "down" (network failure or a retryable status:
    the caller should not spend its own budget on the server), "partial" (out of time) or
    "busy" (another process is draining).
    """
    directory = directory or config.spool_dir()
    if not pending(directory):
        return "empty"
    with fs.Lock(os.path.join(directory, ".drain.lock"), blocking=False) as locked:
        if not locked:
            return "busy"
        # Re-list under the lock: another drainer may have sent some meanwhile.
        for path in pending(directory):
            left = deadline - time.monotonic()
            if left <= 0.01:
                return "partial"
            try:
                with open(path, "rb") as f:
                    body = f.read()
            except OSError:
                continue
            headers = {"Content-Type": "application/json"}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            try:
                answer = transport.request("POST", url + "/v1/ingest", body, headers, left)
            except transport.TransportError:
                return "down"
            if answer.ok:
                fs.remove(path)
            elif final(answer.status):
                os.replace(path, path[: -len(SUFFIX)] + REJECTED)
            else:
                return "down"
        return "done"


def _trim(directory: str) -> None:
    files = pending(directory)
    for path in files[: max(0, len(files) - MAX_FILES)]:
        fs.remove(path)


def flush_command(timeout: float) -> int:
    """`voight flush`: replay the whole spool now; exit 1 if anything is left."""
    before = len(pending())
    outcome = drain(config.url(), config.key(), time.monotonic() + timeout)
    left = len(pending())
    print(f"spool {config.spool_dir()}: sent {before - left} batch(es), {left} left ({outcome})")
    return 1 if left else 0
