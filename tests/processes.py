"""Running the hook client as Claude Code does, for every test that needs it."""

from __future__ import annotations

import os
import select
import subprocess


def run_and_wait(argv, data: bytes, env: dict, timeout: float = 20, **options):
    """Run a hook command and wait for every process it leaves behind.

    A hook that needs no answer exits once its request is sent and a detached child reads the
    answer (voight/client/hook.py). The tests look at what arrived and what was spooled right
    after the call, so they wait for that child too: it inherits one end of a pipe and keeps
    it open until it exits.
    """
    read_end, write_end = os.pipe()
    try:
        result = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=timeout,
                                pass_fds=(write_end,), **options)
    finally:
        os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        assert ready, f"a detached hook child still runs after {timeout} s"
        os.read(read_end, 1)
    finally:
        os.close(read_end)
    return result
