"""A body over the limit gets its 413 and JSON message, whatever the client and the server.

Real server processes on the test database -- gunicorn as in production, and `manage.py
serve` (daphne) as in the embedded default -- and the clients Voight meets: urllib (how most
Python code and Voight's own SDK and hook client send: the whole body, then the answer),
Node's fetch (Claude Code's http hooks) and curl. Before voight/unread_body.py, urllib saw a
reset from gunicorn instead of the 413.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import factories

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEN_MIB = 10 * 1024 * 1024
PATHS = ["/v1/ingest", "/v1/hooks/claude-code"]
NODE_POST = """
const [url, key, size] = process.argv.slice(1);
fetch(url, {method: "POST", body: Buffer.alloc(Number(size), 0x78),
            headers: {"Authorization": `Bearer ${key}`, "Content-Type": "application/json"}})
  .then(async r => console.log(JSON.stringify({status: r.status, body: await r.text()})))
  .catch(e => console.log(JSON.stringify({error: String(e), cause: String(e.cause)})));
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    return (f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


class Served:
    def __init__(self, argv: list[str], env: dict):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [a.replace("@PORT@", str(self.port)) for a in argv]
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/login/", timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{argv} did not start") from None
                time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 15)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()


@pytest.fixture(params=["gunicorn", "embedded"])
def server(request, transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the server process needs a database it can share (PostgreSQL)")
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    env.update(DATABASE_URL=_database_url(), CONN_MAX_AGE="0", PYTHONUNBUFFERED="1",
               VOIGHT_HOME=str(tmp_path), DJANGO_SETTINGS_MODULE="voight.settings")
    if request.param == "gunicorn":
        argv = [sys.executable, "-m", "gunicorn", "voight.wsgi:application", "-w", "2",
                "-b", "127.0.0.1:@PORT@", "--timeout", "30"]
    else:  # the embedded default's server (daphne); with Redis it leaves the schedule to beat
        env["REDIS_URL"] = env.get("REDIS_URL") or "redis://127.0.0.1:6379/2"
        argv = [sys.executable, "manage.py", "serve", "--no-demo", "--port", "@PORT@"]
    served = Served(argv, env)
    served.kind = request.param
    yield served
    served.stop()


@pytest.fixture
def secret(team):
    _, secret = factories.api_key(team, ["ingest"])
    return secret


def too_large() -> dict:
    return {"error": f"body is larger than {settings.VOIGHT_MAX_BODY_BYTES} bytes"}


def urllib_post(url: str, secret: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def node_post(url: str, secret: str, size: int) -> tuple[int, dict] | str:
    out = subprocess.run(["node", "-e", NODE_POST, url, secret, str(size)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    answer = json.loads(out)
    return (answer["status"], json.loads(answer["body"])) if "status" in answer else out


def curl_post(url: str, secret: str, body_file: Path) -> tuple[int, dict] | str:
    out = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {secret}",
         "-H", "Content-Type: application/json", "--data-binary", f"@{body_file}", url],
        capture_output=True, text=True, timeout=60,
    )
    text, _, status = out.stdout.rpartition("\n")
    return (int(status), json.loads(text)) if text else out.stderr


def test_every_client_gets_the_413_and_its_message(server, secret, tmp_path):
    body_file = tmp_path / "body.json"
    body_file.write_bytes(b"x" * TEN_MIB)
    clients = {"urllib": lambda url: urllib_post(url, secret, body_file.read_bytes())}
    if shutil.which("node"):
        clients["node fetch"] = lambda url: node_post(url, secret, TEN_MIB)
    if shutil.which("curl"):
        clients["curl"] = lambda url: curl_post(url, secret, body_file)
    answers = {(name, path): post(server.url + path)
               for path in PATHS for name, post in clients.items()}
    assert answers == {key: (413, too_large()) for key in answers}


def test_a_refused_body_is_never_held_in_memory_and_the_server_goes_on(server, secret):
    """64 MiB streamed in 1 MiB pieces: the server's peak memory must not grow with it."""
    for _ in range(8):  # every worker has served /v1/ingest once: its first-use imports
        urllib_post(server.url + "/v1/ingest", secret, b"[]")  # are not counted below
    pids = [server.pid, *_children(server.pid)]
    before = sum(_peak_kib(pid) for pid in pids)
    size, piece = 64 * 1024 * 1024, b"x" * (1024 * 1024)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/v1/ingest")
    conn.putheader("Authorization", f"Bearer {secret}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    with contextlib.suppress(ConnectionError):  # if a server stops reading, its answer counts
        for _ in range(size // len(piece)):
            conn.send(piece)
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    grown_mib = (sum(_peak_kib(pid) for pid in pids) - before) / 1024
    assert grown_mib < 24, f"peak memory grew by {grown_mib:.0f} MiB"

    status, answer = urllib_post(server.url + "/v1/ingest", secret,
                                 json.dumps([{"type": "log", "session_id": "after-413"}]).encode())
    # Folded in the request (embedded) or staged for the fold (gunicorn).
    assert status == 207 and [r["status"] for r in answer["results"]] in (["created"], ["accepted"])


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_the_hook_client_takes_a_413_as_final(server, secret, tmp_path):
    """`voight hook` with an event the server can never take: exit 0, nothing spooled."""
    edits = [{"old_string": "a", "new_string": "x" * 40_000} for _ in range(200)]  # 8 MB
    payload = {"session_id": "s-oversized", "hook_event_name": "PreToolUse", "cwd": "/tmp",
               "tool_name": "MultiEdit", "tool_use_id": "toolu_1",
               "tool_input": {"file_path": "/tmp/a.py", "edits": edits}}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp_path),
           "HOME": str(tmp_path), "VOIGHT_URL": server.url, "VOIGHT_KEY": secret,
           "VOIGHT_TIMEOUT": "20", "VOIGHT_SPOOL_DIR": str(tmp_path / "spool")}
    result = subprocess.run(
        [sys.executable, "-S", str(ROOT / "voight" / "client" / "__main__.py"), "hook"],
        input=json.dumps(payload).encode(), env=env, capture_output=True, timeout=60,
    )
    assert result.returncode == 0
    assert b"(413)" in result.stderr, result.stderr
    assert not list((tmp_path / "spool").glob("*.json"))
