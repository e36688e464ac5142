"""Running the real Claude Code CLI offline: install (pinned, cached), environment, one `-p`.

The CLI comes from npm (`.ci/install-claude-code`, cached under build/claude-code/). It talks
only to the Anthropic mock named by `ANTHROPIC_BASE_URL`, with a fake API key, its
non-essential traffic (telemetry to Anthropic, update checks, error reports) switched off,
and `HOME` in a temp dir so nothing of the machine's own Claude Code setup leaks in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "2.1.332"
INSTALL = ROOT / ".ci" / "install-claude-code"
MODEL = "claude-sonnet-4-6"  # priced by ingest/pricing.py
# CI installs the CLI before `make test` and must not skip these tests silently.
REQUIRED_ENV = "VOIGHT_REQUIRE_CLAUDE_CODE"


def install() -> tuple[Path | None, str]:
    """(path of the `claude` executable, "") or (None, why it is unavailable)."""
    if shutil.which("npm") is None and not _cached().exists():
        return None, "npm is not installed (.ci/run installs Node and npm)"
    result = subprocess.run(
        [str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "CLAUDE_CODE_VERSION": VERSION},
    )
    if result.returncode != 0:
        return None, f"installing @anthropic-ai/claude-code@{VERSION} failed: {result.stderr[-800:]}"
    return Path(result.stdout.strip().splitlines()[-1]), ""


def _cached() -> Path:
    return ROOT / "build" / "claude-code" / VERSION / "node_modules" / ".bin" / "claude"


def base_env(home: Path, api_url: str) -> dict[str, str]:
    """The CLI's environment: offline against the mock, nothing non-essential."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "ANTHROPIC_BASE_URL": api_url,
        "ANTHROPIC_API_KEY": "sk-ant-e2e-not-a-real-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    }


def otel_env(voight_url: str, key: str) -> dict[str, str]:
    """Claude Code's own OpenTelemetry export, exactly as the README shows it."""
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"{voight_url}/v1/otlp",
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {key}",
    }


@dataclasses.dataclass
class Result:
    returncode: int
    output: dict
    stderr: str

    @property
    def session_id(self) -> str:
        return self.output["session_id"]


def run(claude: Path, project: Path, env: dict, prompt: str, *, resume: str | None = None,
        timeout: float = 120, allowed: str = "Write,Bash,Read") -> Result:
    """`claude -p PROMPT --output-format json` in `project`, with `allowed` tools allowed."""
    argv = [str(claude), "-p", prompt, "--output-format", "json", "--model", MODEL,
            "--allowedTools", allowed]
    if resume:
        argv += ["--resume", resume]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)
    try:
        output = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"claude exited {done.returncode} without JSON output\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
        ) from None
    return Result(done.returncode, output, done.stderr)


def transcript(home: Path, session_id: str) -> list[dict]:
    found = list((home / ".claude" / "projects").glob(f"*/{session_id}.jsonl"))
    assert len(found) == 1, f"no single transcript for {session_id}: {found}"
    return [json.loads(line) for line in found[0].read_text().splitlines() if line.strip()]


def prompt_ids(home: Path, session_id: str) -> list[str]:
    """Claude Code's prompt ids, in order, as its transcript records them."""
    ids: list[str] = []
    for line in transcript(home, session_id):
        prompt_id = line.get("promptId")
        if line.get("type") == "user" and prompt_id and prompt_id not in ids:
            ids.append(prompt_id)
    return ids
