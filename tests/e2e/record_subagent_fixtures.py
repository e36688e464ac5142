"""Record what the real Claude Code CLI sends when the model spawns subagents.

    .venv/bin/python -m tests.e2e.record_subagent_fixtures

Two `-p` runs (tests/e2e/subagent_turns.py): the main agent calls `Agent` in the foreground,
then (a new session) with `run_in_background: true`; each subagent reads a file and runs a
failing Bash. Every hook event, Claude Code's OTLP export, the transcripts (main and
`subagents/agent-*.jsonl`) and the usage the mock reported per request are written under
tests/fixtures/claude_code_<version>/subagents/<run>/, scrubbed like record_fixtures.py.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shlex
import shutil
import tempfile
from pathlib import Path

from tests.e2e import claude_cli
from tests.e2e.anthropic_mock import AnthropicMock
from tests.e2e.record_fixtures import ALL_EVENTS, OUT, Recorder, scrub
from tests.e2e.subagent_turns import NOTES, PROMPT_BACKGROUND, PROMPT_SPAWN, scripts

RUNS = (("foreground", PROMPT_SPAWN), ("background", PROMPT_BACKGROUND))


def record(claude: Path, name: str, prompt: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="voight-record-"))
    home, project, hooks = root / "home", root / "project", root / "hooks"
    for path in (home / ".claude", project, hooks):
        path.mkdir(parents=True)
    (project / "notes.txt").write_text(NOTES)
    command = f"cat > {shlex.quote(str(hooks))}/$(date +%s%N)-$$.json"
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {
        event: [{"hooks": [{"type": "command", "command": command}]}] for event in ALL_EVENTS
    }}))
    recorder = Recorder()
    mock = AnthropicMock(scripts(project), run_tag=secrets.token_hex(3))
    env = {**claude_cli.base_env(home, mock.url),
           **claude_cli.otel_env(recorder.url, "vk_recorded_key")}
    result = claude_cli.run(claude, project, env, prompt, allowed="Agent,Bash,Read",
                            timeout=240)
    mock.stop()
    recorder.server.shutdown()

    out = OUT / "subagents" / name
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("hooks", "otlp", "transcripts"):
        (out / sub).mkdir(parents=True)
    for n, path in enumerate(sorted(hooks.glob("*.json")), 1):
        payload = json.loads(scrub(path.read_text(), home, project))
        (out / "hooks" / f"{n:02d}-{payload['hook_event_name']}.json").write_text(
            json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    for n, (url_path, body) in enumerate(recorder.bodies, 1):
        signal = url_path.rstrip("/").rsplit("/", 1)[-1]
        data = json.loads(scrub(body.decode(), home, project))
        (out / "otlp" / f"{n:02d}-{signal}.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    projects = home / ".claude" / "projects"
    for path in sorted(projects.rglob("*.jsonl")):
        relative = scrub(str(path.relative_to(projects)), home, project).split("/", 1)[1]
        target = out / "transcripts" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(scrub(path.read_text(), home, project))
    (out / "mock-answers.json").write_text(json.dumps(
        {"result": result.output.get("result"),
         "answered": [dataclasses.asdict(a) for a in mock.answered]}, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print(f"{name}: recorded under {out.relative_to(claude_cli.ROOT)}")


def main() -> None:
    claude, why = claude_cli.install()
    if claude is None:
        raise SystemExit(why)
    for name, prompt in RUNS:
        record(claude, name, prompt)


if __name__ == "__main__":
    main()
