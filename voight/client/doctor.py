"""`voight doctor`: is this machine able to report to Voight? Says what to fix.

Checks, in the order a broken setup usually fails: server reachable (GET /healthz), key
accepted (an empty batch to /v1/ingest answers 207; 401/403 means a bad key), clock skew
(event times are the agent's clock, and traces are stitched by time), spool backlog, and
whether Claude Code's settings call us. Exit 1 if anything needs fixing.
"""

import os
import shlex
import time

from voight.client import config, install, spool, transport

MAX_SKEW = 30.0  # seconds; beyond this late events start landing in the wrong trace
TIMEOUT = 5.0


class Report:
    def __init__(self):
        self.problems = 0

    def ok(self, message: str) -> None:
        print(f"  ok    {message}")

    def warn(self, message: str) -> None:
        print(f"  warn  {message}")

    def fail(self, message: str, fix: str) -> None:
        self.problems += 1
        print(f"  FAIL  {message}\n        fix: {fix}")


def run() -> int:
    report = Report()
    url, key = config.url(), config.key()
    print(f"Voight doctor — server {url}")
    if not os.environ.get("VOIGHT_URL"):
        report.warn(f"VOIGHT_URL is not set; using the default {config.DEFAULT_URL}")

    reachable = _check_health(report, url)
    if reachable:
        _check_key(report, url, key)
    _check_spool(report)
    _check_hooks(report)
    print("All good." if not report.problems else f"{report.problems} problem(s) to fix.")
    return 1 if report.problems else 0


def _check_health(report: Report, url: str) -> bool:
    try:
        started = time.time()
        answer = transport.request("GET", url + "/healthz", timeout=TIMEOUT)
        elapsed = time.time() - started
    except transport.TransportError as exc:
        report.fail(f"server not reachable: {exc}", "start the server or set VOIGHT_URL")
        return False
    if answer.ok:
        report.ok(f"server reachable (GET /healthz {answer.status}, {elapsed * 1000:.0f} ms)")
    else:
        report.fail(
            f"GET /healthz answered {answer.status}: {answer.body[:200].decode(errors='replace')}",
            "the server is up but unhealthy: check its database, Redis and beat",
        )
    _check_clock(report, answer, started, elapsed)
    return True


def _server_time(answer: transport.Response) -> float | None:
    """The server's clock: a `time` field in the /healthz JSON (ISO 8601, sub-second) if it
    sends one, else the HTTP Date header (1 s resolution)."""
    from datetime import datetime

    body = answer.json()
    if isinstance(body, dict) and isinstance(body.get("time"), str):
        try:
            return datetime.fromisoformat(body["time"]).timestamp()
        except ValueError:
            pass
    if answer.headers.get("date"):
        from email.utils import parsedate_to_datetime

        try:
            return parsedate_to_datetime(answer.headers["date"]).timestamp()
        except (TypeError, ValueError):
            pass
    return None


def _check_clock(report: Report, answer: transport.Response, started: float, elapsed: float):
    server = _server_time(answer)
    if server is None:
        report.warn("server sent no usable Date header or time; clock skew not checked")
        return
    # The server stamped its time somewhere during the request: compare with the midpoint.
    skew = server - (started + elapsed / 2)
    if abs(skew) > MAX_SKEW:
        report.fail(
            f"clock skew {skew:+.0f} s against the server",
            "sync this machine's clock (NTP); event times come from it",
        )
    else:
        report.ok(f"clock skew {skew:+.1f} s (within ±{MAX_SKEW:.0f} s)")


def _check_key(report: Report, url: str, key: str) -> None:
    if not key:
        report.fail("VOIGHT_KEY is not set", "create an ingest key and export VOIGHT_KEY")
        return
    try:
        answer = transport.post_json(url + "/v1/ingest", key, [], TIMEOUT)
    except transport.TransportError as exc:
        report.fail(f"POST /v1/ingest failed: {exc}", "check the server logs")
        return
    if answer.status == 207:
        report.ok("key accepted (POST /v1/ingest [] → 207)")
        body = answer.json()
        if isinstance(body, dict) and body.get("agent_paused"):
            report.warn(f"agent is paused: {body.get('paused_reason') or 'no reason given'}")
    elif answer.status in (401, 403):
        report.fail(
            f"key refused ({answer.status})",
            "the key is wrong, revoked, or lacks the `ingest` scope: create a new one",
        )
    else:
        report.fail(
            f"POST /v1/ingest answered {answer.status}, expected 207",
            "is VOIGHT_URL the Voight server (and not a proxy or another app)?",
        )


def _check_spool(report: Report) -> None:
    files = spool.pending()
    rejected = spool.rejected()
    directory = config.spool_dir()
    if files:
        age = time.time() - os.path.getmtime(files[0])
        report.fail(
            f"{len(files)} undelivered batch(es) in {directory}, oldest {_age(age)} old",
            "fix the problems above, then run `voight flush` (or let the next hook send them)",
        )
    else:
        report.ok(f"spool empty ({directory})")
    if rejected:
        report.warn(f"{len(rejected)} refused batch(es) kept as *.rejected in {directory}")


def _check_hooks(report: Report) -> None:
    found = False
    places = (("user", install.settings_path(False)), ("project", install.settings_path(True)))
    for label, path in places:
        handlers = install.our_handlers(path)
        if not handlers:
            continue
        found = True
        report.ok(f"{label} hooks installed in {path} ({len(handlers)} events)")
        missing = [e for e in install.EVENTS if e not in handlers]
        if missing:
            report.warn(f"{label} settings lack {', '.join(missing)}; re-run install-hooks")
        commands = {h["command"] for hs in handlers.values() for h in hs if h.get("command")}
        for command in sorted(commands):
            argv = shlex.split(command)[:3]
            gone = [a for a in argv if os.path.isabs(a) and not os.path.exists(a)]
            if gone:
                report.fail(
                    f"{label} hook command points at missing {', '.join(gone)}",
                    "re-run `voight install-hooks` from the Python that has Voight installed",
                )
    if not found:
        report.fail("no Voight hooks in Claude Code's settings", "run `voight install-hooks`")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
