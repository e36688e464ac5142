"""Throwaway PostgreSQL clusters, Redis servers and Voight web processes that a test owns,
so it can stop and restart them without touching the shared services."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float = 30.0, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"{check} not ready after {timeout}s")


def http_status(url: str, data: bytes | None = None, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found[-1]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresCluster:
    """A private cluster on its own port, trust auth, that can be stopped and started."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="voight-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        subprocess.run(
            _as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U",
                          "postgres", "--no-sync"]),
            check=True, capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-l",
                          str(self.dir / "log"), "-o",
                          f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                          "-c fsync=off", "start"]),
            check=True, capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop"]),
            capture_output=True,
        )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), 0.2).close() or True)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class WebServer:
    """gunicorn serving voight.wsgi in production mode against the given services."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
            capture_output=True, text=True,
        ).stdout

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "voight.wsgi:application", "-w", "2",
             "-b", f"127.0.0.1:{self.port}", "--timeout", "30"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: http_status(self.url + "/healthz") in (200, 503))

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


class CeleryProcess:
    """`celery -A voight worker` or `beat`, in its own process group so that stopping it
    (SIGTERM, a warm shutdown) or killing it (SIGKILL, nothing acknowledged or restored)
    takes its pool children with it. Restartable; its log is kept for the failure report."""

    def __init__(self, role: str, env: dict, workdir: Path, *args: str):
        self.role, self.workdir, self.args = role, workdir, args
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen | None = None
        self.log = workdir / f"celery-{role}-{len(list(workdir.glob('celery-*.log')))}.log"
        self.log.touch()
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        argv = [str(Path(sys.executable).with_name("celery")), "-A", "voight", self.role,
                "--loglevel=INFO", *self.args]
        if self.role == "worker":
            argv += ["--without-gossip", "--without-mingle", "--without-heartbeat",
                     "-n", f"faults{self.starts}@%h"]
        if self.role == "beat" or "-B" in self.args:
            # A fresh schedule file per start: a killed beat may leave its file half-written.
            argv += ["-s", str(self.workdir / f"beat-schedule-{self.role}-{self.starts}")]
        with self.log.open("a") as log:
            log.write(f"\n===== start {self.starts}\n")
            log.flush()
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal(self, sig: int, wait: float) -> bool:
        if not self.alive:
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(wait)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        """Warm shutdown; killed if it does not exit in 15 s."""
        if not self._signal(signal.SIGTERM, 15):
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group, as the OOM killer or a lost host would."""
        self._signal(signal.SIGKILL, 10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # any orphan left in the group

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text()[-chars:] if self.log.exists() else ""
