"""Running the real OpenAI Codex CLI offline: install (pinned, cached), config, one `exec`.

The CLI comes from npm (`.ci/install-codex`, cached under build/codex/): a Node launcher and
the native binary for this platform. It talks only to the OpenAI mock named by a custom
`model_provider` in `$CODEX_HOME/config.toml` (Responses API over SSE, a fake key from
`env_key`), with `HOME` and `CODEX_HOME` in a temp dir so nothing of the machine's own Codex
setup leaks in, and with approvals off and no sandbox so it runs shell commands without
asking. (Codex also POSTs `/analytics/codex/turn-costs` to the provider: the mock
answers 404.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.171.0"
INSTALL = ROOT / ".ci" / "install-codex"
MODEL = "gpt-5-codex"  # priced by ingest/pricing.py
# CI installs the CLI before `make test` and must not skip these tests silently.
REQUIRED_ENV = "VOIGHT_REQUIRE_CODEX"
API_KEY_ENV = "VOIGHT_E2E_OPENAI_KEY"


def install() -> tuple[Path | None, str]:
    """(path of the `codex` executable, "") or (None, why it is unavailable)."""
    if shutil.which("npm") is None and not _cached().exists():
        return None, "npm is not installed (.ci/run installs Node and npm)"
    result = subprocess.run(
        [str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "CODEX_VERSION": VERSION},
    )
    if result.returncode != 0:
        return None, f"installing @openai/codex@{VERSION} failed: {result.stderr[-800:]}"
    return Path(result.stdout.strip().splitlines()[-1]), ""


def _cached() -> Path:
    return ROOT / "build" / "codex" / VERSION / "node_modules" / ".bin" / "codex"


def _toml(value) -> str:
    return json.dumps(value)  # a JSON string or array of strings is valid TOML


def config_toml(api_url: str, *, otel: str = "", notify: list[str] | None = None) -> str:
    """`$CODEX_HOME/config.toml`: the mock as the model provider, no approvals, no sandbox;
    `otel` (a TOML `[otel]` table) and `notify` as a user would add them."""
    lines = [
        f"model = {_toml(MODEL)}",
        'model_provider = "voight-e2e"',
        'approval_policy = "never"',
        'sandbox_mode = "danger-full-access"',
    ]
    if notify:
        lines.append(f"notify = {_toml(notify)}")
    lines += [
        "",
        "[model_providers.voight-e2e]",
        'name = "Voight e2e mock"',
        f"base_url = {_toml(api_url)}",
        f"env_key = {_toml(API_KEY_ENV)}",
        'wire_api = "responses"',
        "",
    ]
    return "\n".join(lines) + ("\n" + otel if otel else "")


def otel_table(voight_url: str, key: str, *, log_user_prompt: bool = True) -> str:
    """Codex's OpenTelemetry log export to Voight, as the connect snippet shows it."""
    return (
        "[otel]\n"
        f"log_user_prompt = {'true' if log_user_prompt else 'false'}\n"
        f"exporter = {{ otlp-http = {{ endpoint = {_toml(voight_url + '/v1/otlp/v1/logs')}, "
        f'protocol = "json", headers = {{ "Authorization" = {_toml("Bearer " + key)} }} }} }}\n'
    )


def prepare(home: Path, config: str) -> dict[str, str]:
    """Write `config` into `home/.codex` and return the CLI's environment."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(config)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        API_KEY_ENV: "sk-e2e-not-a-real-key",
    }


@dataclasses.dataclass
class Result:
    returncode: int
    events: list[dict]  # `codex exec --json` lines
    stderr: str

    @property
    def thread_id(self) -> str:
        return next(e["thread_id"] for e in self.events if e.get("type") == "thread.started")

    def items(self, kind: str) -> list[dict]:
        return [e["item"] for e in self.events
                if e.get("type") == "item.completed" and e["item"].get("type") == kind]


def run(codex: Path, project: Path, env: dict, prompt: str, *, resume: str | None = None,
        extra: list[str] | None = None, timeout: float = 60) -> Result:
    """`codex exec --json PROMPT` (or `exec resume THREAD PROMPT`) in `project`."""
    argv = [str(codex), "exec"]
    if resume:
        argv += ["resume", resume]
    argv += ["--json", "--skip-git-repo-check", *(extra or []), prompt]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    if not any(e.get("type") == "thread.started" for e in events):
        raise AssertionError(
            f"codex exited {done.returncode} without a thread\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}")
    return Result(done.returncode, events, done.stderr)
