"""Production settings pass `manage.py check --deploy`, and refuse the public embedded key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def deploy_check(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "VOIGHT_HTTPS",
                         "SECURE_HSTS_SECONDS", "SECURE_COOKIES")}
    base.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
def test_production_settings_pass_the_deploy_check():
    result = deploy_check(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="voight.example.com",
                          VOIGHT_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_the_public_embedded_key_fails_the_deploy_check():
    result = deploy_check(ALLOWED_HOSTS="voight.example.com", VOIGHT_HTTPS="1")
    assert result.returncode != 0
    assert "voight.E001" in result.stderr


@pytest.mark.slow
def test_a_deployment_without_https_is_reported():
    result = deploy_check(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="voight.example.com")
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr
