"""Fixtures for driving the real Claude Code CLI against a live Voight.

A real gunicorn serves Voight on the test database (PostgreSQL: the server process and this
one share it); the CLI runs in a temp project with `HOME` in a temp dir and talks to the
scripted Anthropic mock. Team and keys are made here through the ORM.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.e2e import claude_cli, turns
from tests.e2e.anthropic_mock import AnthropicMock
from tests.reliability.services import ROOT, WebServer


@pytest.fixture(scope="session")
def claude() -> Path:
    path, why = claude_cli.install()
    if path is None:
        if os.environ.get(claude_cli.REQUIRED_ENV):
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture
def voight(transactional_db):
    """A live Voight (gunicorn, production settings) on the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("the live server shares the test database: needs PostgreSQL (DATABASE_URL)")
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    server = WebServer({
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                        f"{db['NAME']}",
        "SECRET_KEY": "e2e-claude-code",
        # Production settings inside this test process's Redis namespace (tests/conftest.py).
        "DJANGO_SETTINGS_MODULE": "tests.shared_redis_settings",
        "CONN_MAX_AGE": "0",
    })
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workdir(tmp_path) -> tuple[Path, Path]:
    """(HOME, project): a private home for the CLI and an empty project directory."""
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    return home, project


@pytest.fixture
def anthropic(workdir):
    """The scripted Messages API answering the turns of tests/e2e/turns.py."""
    _, project = workdir
    mock = AnthropicMock(turns.scripts(project), run_tag=secrets.token_hex(3))
    yield mock
    mock.stop()


def install_hooks(project: Path, url: str, key: str, agent: str) -> None:
    """`voight install-hooks --project`, run in the project as a user would."""
    voight_bin = Path(sys.executable).with_name("voight")
    subprocess.run(
        [str(voight_bin), "install-hooks", "--project", "--url", url, "--key", key,
         "--agent", agent],
        cwd=project, check=True, capture_output=True, timeout=60,
        env={**os.environ, "HOME": str(project.parent / "home")},
    )


__all__ = ["ROOT", "install_hooks"]
