"""Deployment checks of our own, run by `manage.py check --deploy`."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def secret_key_from_environment(app_configs, **kwargs):
    """The embedded default signs sessions with a key that is public in this repository;
    a production deployment (PostgreSQL) must bring its own."""
    if settings.EMBEDDED or settings.SECRET_KEY != settings.EMBEDDED_SECRET_KEY:
        return []
    return [Error(
        "SECRET_KEY is the embedded default, which is public.",
        hint="Set SECRET_KEY in the environment to a long random value "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))').",
        id="voight.E001",
    )]
