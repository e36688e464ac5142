"""What every benchmark needs: a scratch PostgreSQL database, Django pointed at it, real
servers on loopback, a team with keys, and percentiles.

The scratch database is `voight_bench_<pid>` (`voight_soak_<pid>` for the soak; never `voight` or `test_voight*`, which other
people use), created and migrated once per run and dropped at the end. Redis is a database
number of its own (14 unless `BENCH_REDIS_URL` says otherwise), so live broadcasts and rate
counters never reach anyone else's processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
SERVER_SETTINGS = "bench.server_settings"


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _admin_url() -> str:
    """The server to make scratch databases on: BENCH_PG_URL, else DATABASE_URL's server."""
    if os.environ.get("BENCH_PG_URL"):
        return os.environ["BENCH_PG_URL"]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        return _with_db(url, "postgres")
    return "postgres://postgres@127.0.0.1:5432/postgres"


PG_URL = _admin_url()
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# So a rate limiter that still runs (its Redis round trip is part of the cost) never trips.
UNLIMITED_RATE = 10**9


class Skip(Exception):
    """A benchmark that cannot run here (a page or endpoint not written yet); the message
    says why and the suite goes on."""


def admin_connect():
    import psycopg

    return psycopg.connect(PG_URL, autocommit=True)


def database_url(name: str) -> str:
    return _with_db(PG_URL, name)


SCRATCH_PREFIXES = ("voight_bench_", "voight_soak_")


def create_database(name: str) -> str:
    assert name.startswith(SCRATCH_PREFIXES), name
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def drop_database(name: str) -> None:
    assert name.startswith(SCRATCH_PREFIXES), name
    with contextlib.suppress(Exception), admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_setup(db_url: str) -> None:
    """Point this process's Django at the scratch database and migrate it."""
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["DJANGO_SETTINGS_MODULE"] = SERVER_SETTINGS
    # Embedded-mode paths (static files) stay out of the way of a developer's var/.
    os.environ.setdefault("VOIGHT_HOME", str(RESULTS / "var"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def server_env(**extra: str) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS,
        "PYTHONDONTWRITEBYTECODE": "1",
        "SECURE_COOKIES": "false",
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real server process on loopback: gunicorn (WSGI) or daphne (ASGI)."""

    def __init__(self, kind: str = "gunicorn", workers: int = 4, env: dict | None = None,
                 timeout: int = 120, extra: list[str] | None = None):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if kind == "gunicorn":
            argv = [str(BIN / "gunicorn"), "voight.wsgi:application", "-b",
                    f"127.0.0.1:{self.port}", "-w", str(workers), "--timeout", str(timeout),
                    "--log-level", "warning", "--backlog", "2048"]
        elif kind == "daphne":
            argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port),
                    "--verbosity", "0", "voight.asgi:application"]
        elif kind == "uvicorn":
            argv = [str(BIN / "uvicorn"), "voight.asgi:application", "--host", "127.0.0.1",
                    "--port", str(self.port), "--workers", str(workers), "--log-level",
                    "warning", "--no-access-log"]
        else:
            raise ValueError(kind)
        argv += extra or []
        self.log = open(RESULTS / f"server-{kind}-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env or server_env(), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    # Four workers importing Django on two cores shared at load 15 took over 30 s.
    def _wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/bench/ping", timeout=2) as r:
                    if r.status == 200:
                        # Every worker imports lazily; warm them a little.
                        for _ in range(8):
                            urllib.request.urlopen(self.url + "/bench/ping", timeout=5).read()
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not answer in {seconds} s")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:
            pids = []
        return pids or [self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The server runs in its own session: its process group holds exactly its workers.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# Where the benchmarks' servers fold (docs/scaling.md §1): "process" — web workers with
# VOIGHT_FOLD=process and one `manage.py fold` beside them, as the Procfile runs them — or
# "thread", a folder thread in each web worker. BENCH_FOLDER overrides; BENCH_FOLDER_NICE is
# the folder process's nice value.
FOLDER = os.environ.get("BENCH_FOLDER", "process")
FOLDER_NICE = int(os.environ.get("BENCH_FOLDER_NICE", "10"))


class Folder:
    """`manage.py fold` on the server's settings, when the benchmarks fold in a process."""

    def __init__(self, env: dict | None = None):
        self.proc = None
        if FOLDER != "process":
            return
        self.log = open(RESULTS / f"folder-{os.getpid()}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "fold", "--nice", str(FOLDER_NICE)], cwd=ROOT,
            env=env or server_env(VOIGHT_FOLD="process"), stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def web_server(workers: int) -> Server:
    """The gunicorn the ingest benchmarks drive, folding as `FOLDER` says."""
    return Server("gunicorn", workers=workers, env=server_env(VOIGHT_FOLD=FOLDER))


def placement(workers: int) -> str:
    if FOLDER == "process":
        return (f"gunicorn {workers} sync workers (VOIGHT_FOLD=process) + 1 folder process"
                f" (manage.py fold, nice {FOLDER_NICE})")
    return f"gunicorn {workers} sync workers, a folder thread in each (VOIGHT_FOLD=thread)"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (and their reaped children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / ticks
    return total


def bench_team(slug: str, *, scopes=("ingest",), user=None):
    """A team with an ingest key (and a read key); returns (team, ingest secret, read secret)."""
    from voight.models import Team
    from voight.services import api_key_create, team_create

    team = team_create(slug=slug, name=slug, owner=user)
    Team.objects.filter(pk=team.pk).update(
        ingest_rate_per_minute=UNLIMITED_RATE, read_rate_per_minute=UNLIMITED_RATE
    )
    team.refresh_from_db()
    _, ingest = api_key_create(team=team, scopes=list(scopes), name="bench")
    _, read = api_key_create(team=team, scopes=["read"], name="bench-read")
    return team, ingest, read


def staged_drained(team_pk: int, timeout: float = 300.0) -> float:
    """Wait until the team has no staged hook left to fold (hooks are answered when staged,
    ingest/staging.py); returns the seconds waited."""
    from ingest.models import StagedEvent

    began = time.monotonic()
    pending = StagedEvent.objects.filter(team_id=team_pk, failed_at__isnull=True)
    while pending.exists():
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"staged hooks not folded after {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - began


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_stats(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
    }


def backend_cpu() -> float | None:
    """CPU seconds (user + system) this process's default database connection's PostgreSQL
    backend has used, read from /proc when the server runs on this machine; None elsewhere.

    On a shared machine a statement's wall clock is mostly waiting for a core (at load 9 on
    2 cores a 0.25 s status tick took 0.9 s); the backend's own CPU is what it costs.
    """
    from django.db import connection

    try:
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, IndexError, ValueError):
        return None


def database_backends() -> list[int]:
    """The pids of every PostgreSQL backend connected to this process's database (the web
    workers', the folder's, the bench's own), for `cpu_seconds` when the server runs on this
    machine; other databases' backends on the same server are left out."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [pid for (pid,) in cursor.fetchall()]


class CpuMeter:
    """CPU seconds of the named processes between `start()` and `stop()`: the bench client
    (this process), the server's workers, the folder and the database's backends. A backend
    opened during the interval counts from zero."""

    def __init__(self, **pids: list[int]):
        self.pids = pids

    def _read(self) -> dict[str, dict[int, float]]:
        groups = {**self.pids, "backends": database_backends(), "client": [os.getpid()]}
        return {name: {pid: cpu_seconds([pid]) for pid in group}
                for name, group in groups.items()}

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {name: sum(cpu - self.before.get(name, {}).get(pid, 0.0)
                          for pid, cpu in group.items())
                for name, group in after.items()}


def figure(name: str, value: float, unit: str, *, reference: float | None = None,
           reference_name: str = "", target: str = "", ok: bool | None = None,
           higher_is_better: bool = True) -> dict:
    """One row of the summary table: a measured value, its same-run reference and ratio."""
    # Always value / reference; `higher_is_better` only says which way a good ratio points.
    ratio = round(value / reference, 3) if reference else None
    return {"figure": name, "value": round(value, 3), "unit": unit,
            "higher_is_better": higher_is_better,
            "reference": round(reference, 3) if reference is not None else None,
            "reference_name": reference_name, "ratio": ratio, "target": target, "ok": ok}


@contextlib.contextmanager
def timer() -> Iterator[dict]:
    out = {"start": time.perf_counter()}
    yield out
    out["seconds"] = time.perf_counter() - out["start"]
