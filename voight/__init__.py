"""Voight: observability for AI coding agents.

Stays import-free: the hook client (`voight/client/`) starts with every Claude Code hook,
and anything imported here would cost each call. `voight.log` and `voight.start_session`
load the SDK on first use.
"""


def __getattr__(name):
    if name in ("log", "start_session"):
        from voight.client import sdk

        return getattr(sdk, name)
    # Keep raising for every other name: Celery's `-A voight` probes attributes.
    raise AttributeError(f"module 'voight' has no attribute {name!r}")
