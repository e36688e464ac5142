"""Running the real Gemini CLI offline: install (pinned, cached), settings, environment, one `-p`.

The CLI comes from npm (`.ci/install-gemini`, cached under build/gemini-cli/). It talks only to
the Gemini mock named by `GOOGLE_GEMINI_BASE_URL`, with a fake `GEMINI_API_KEY`, its usage
statistics to Google off, and `HOME` in a temp dir so nothing of the machine's own Gemini
setup leaks in. Its OpenTelemetry export is configured as the connect snippet shows it
(templates/sessions/partials/connect_gemini.html): settings.json `telemetry` plus the bearer
header in OTEL_EXPORTER_OTLP_HEADERS.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.61.0"
INSTALL = ROOT / ".ci" / "install-gemini"
# Named on the command line: without it the CLI routes each turn through a classifier
# request to a model Google has no public price for yet (see ingest/pricing.py).
MODEL = "gemini-2.5-flash"
# CI installs the CLI before `make test` and must not skip these tests silently.
REQUIRED_ENV = "VOIGHT_REQUIRE_GEMINI"


def install() -> tuple[Path | None, str]:
    """(path of the `gemini` executable, "") or (None, why it is unavailable)."""
    if shutil.which("npm") is None and not _cached().exists():
        return None, "npm is not installed (.ci/run installs Node and npm)"
    result = subprocess.run(
        [str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "GEMINI_CLI_VERSION": VERSION},
    )
    if result.returncode != 0:
        return None, f"installing @google/gemini-cli@{VERSION} failed: {result.stderr[-800:]}"
    return Path(result.stdout.strip().splitlines()[-1]), ""


def _cached() -> Path:
    return ROOT / "build" / "gemini-cli" / VERSION / "node_modules" / ".bin" / "gemini"


def write_settings(home: Path, voight_url: str) -> None:
    """~/.gemini/settings.json: API-key auth, no usage statistics, telemetry to Voight."""
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": True, "target": "local", "otlpProtocol": "http",
                      "otlpEndpoint": f"{voight_url}/v1/otlp", "logPrompts": True},
    }, indent=2))


def env(home: Path, api_url: str, key: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "GOOGLE_GEMINI_BASE_URL": api_url,
        "GEMINI_API_KEY": "e2e-not-a-real-key",
        # Headless: the temp project is trusted without the interactive trust dialog
        # (untrusted, the CLI overrides --yolo back to asking).
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
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


def run(gemini: Path, project: Path, environ: dict, prompt: str, *,
        resume: str | None = None, timeout: float = 120) -> Result:
    """`gemini -p PROMPT --yolo --output-format json` in `project` (the CLI flushes its
    telemetry on exit, so everything is exported when this returns)."""
    argv = [str(gemini), "-p", prompt, "--yolo", "--output-format", "json", "-m", MODEL]
    if resume:
        argv += ["--resume", resume]
    done = subprocess.run(argv, cwd=project, env=environ, capture_output=True, text=True,
                          timeout=timeout)
    output = _json_report(done.stdout) or _json_report(done.stderr)
    if not isinstance(output, dict):
        raise AssertionError(
            f"gemini exited {done.returncode} without JSON output\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
        )
    return Result(done.returncode, output, done.stderr)


def _json_report(text: str) -> dict | None:
    """The CLI's JSON report: all of stdout, or (after an error) the end of stderr."""
    start = text.rfind('{\n  "session_id"')
    try:
        return json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        return None
