"""Realistic Claude Code hook streams, with the exact ground truth they should produce.

Used by the server's test suite (replay a stream in order, shuffled, twice, with late
events, and compare the rollups with `expected`) and by `seed_demo` (two weeks of data).
Pure: the standard library and `ingest.pricing` only, no Django, and every random choice
comes from the `random.Random` the caller passes, so one seed gives one stream.

Shapes follow shared/CLAUDE_CODE.md (hook payloads per `hook_event_name`, transcript
usage, ScheduleWakeup); the wrapped form follows SPEC section 4.2 (what `voight hook`
sends). Ground truth is recorded while the stream is generated, never re-parsed from it.

One stream is generated per session and only its *rendering* depends on `raw`: a raw
session is the wrapped one with the envelopes stripped, the usage events and the
SessionStart events left out (SessionStart accepts only command hooks, so an `http`
hook never sees it) - same seed, same payloads, same timestamps.
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ingest.pricing import request_cost

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)

# Tools whose tool_input names a file the agent changed ("files touched").
EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")

# Events whose documented payload includes permission_mode (CLAUDE_CODE.md, common fields).
PERMISSION_MODE_EVENTS = frozenset({
    "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse",
    "PostToolUseFailure", "Stop", "SubagentStop",
})

# Context size (cached tokens) past which a turn starts with an automatic compaction.
AUTO_COMPACT_AT = 100_000

_ALNUM = string.ascii_letters + string.digits
_B36 = string.digits + string.ascii_lowercase


# --------------------------------------------------------------------------- public API


@dataclass
class Delivery:
    """One thing sent to the server, in the order and at the time it happened."""

    kind: str  # "wrapped" | "usage" -> POST /v1/ingest; "raw" -> POST /v1/hooks/claude-code
    body: dict
    ts: datetime  # tz-aware UTC, millisecond precision (equals body["timestamp"] if any)

    @property
    def event_name(self) -> str:
        """The hook_event_name of a hook delivery, "usage" for a usage event."""
        if self.kind == "usage":
            return "usage"
        payload = self.body.get("payload", self.body) if self.kind == "wrapped" else self.body
        return payload.get("hook_event_name", "")


@dataclass
class SimulatedSession:
    session_id: str
    agent_slug: str
    deliveries: list[Delivery]
    expected: dict
    traces: list[dict]
    cwd: str = ""
    model: str = ""


def simulate_session(
    rng: random.Random,
    *,
    agent_slug: str,
    start: datetime,
    prompts: int = 5,
    raw: bool = False,
    model: str = "claude-sonnet-4-6",
    privacy: str = "standard",
    cwd: str | None = None,
    resume: bool = False,
    end: bool = True,
) -> SimulatedSession:
    """One Claude Code session of `prompts` turns starting at `start`.

    With `resume`, the user quits after some turn (SessionEnd prompt_input_exit) and comes
    back later with `claude --resume` (SessionStart source=resume, same session_id); with
    fewer than 2 prompts the session simply starts with source=resume. With `end`, the
    session finishes with SessionEnd reason=prompt_input_exit.
    """
    if prompts < 0:
        raise ValueError("prompts must be >= 0")
    sim = _Sim(rng, agent_slug=agent_slug, start=start, raw=raw, model=model,
               privacy=privacy, cwd=cwd)
    plans = _plan_turns(rng, prompts)
    resume_at = _pick_resume_turn(rng, plans) if resume else None

    sim.session_start("resume" if resume and resume_at is None else "startup")
    sim.advance(3, 60)
    for index, plan in enumerate(plans):
        if index == resume_at:
            sim.quit_and_resume()
        elif index > 0:
            sim.between_turns(plan)
        sim.run_turn(plan)
    if end:
        sim.advance(5, 120)
        sim.session_end("prompt_input_exit")
    return sim.result()


def simulate_fleet(
    rng: random.Random,
    *,
    agents: list[str],
    start: datetime,
    days: int,
    sessions_per_day: tuple[int, int],
    raw: bool = False,
) -> list[SimulatedSession]:
    """`days` days of work for each agent, sorted by session start.

    `start` is the beginning of day 0 (pass e.g. 08:00 local time for a working-day look).
    Each agent keeps one project, model and privacy level (with an occasional other model);
    its sessions of a day run one after the other, the first 0-2 h after the day boundary,
    the next 5-60 min after the previous one ended - so a busy day can run past the next
    day boundary, and the newest events can be up to about a day after `start + days - 1`.
    The last session of the last day may be left open (no SessionEnd), as a live one would.
    """
    profiles = {slug: _agent_profile(rng) for slug in agents}
    sessions: list[SimulatedSession] = []
    for day in range(days):
        day_start = start + timedelta(days=day)
        for slug in agents:
            profile = profiles[slug]
            count = rng.randint(*sessions_per_day)
            at = day_start + timedelta(hours=rng.uniform(0, 2))
            for number in range(count):
                last = day == days - 1 and number == count - 1
                model = profile["model"] if rng.random() < 0.85 else rng.choice(_MODELS)
                session = simulate_session(
                    rng, agent_slug=slug, start=at, prompts=rng.randint(3, 14), raw=raw,
                    model=model, privacy=profile["privacy"], cwd=profile["cwd"],
                    resume=rng.random() < 0.1, end=not (last and rng.random() < 0.5),
                )
                sessions.append(session)
                finished = session.expected["last_event_at"] or at
                at = finished + timedelta(minutes=rng.uniform(5, 60))
    sessions.sort(key=lambda s: (s.expected["started_at"] or start, s.session_id))
    return sessions


def shuffled(deliveries: list[Delivery], rng: random.Random) -> list[Delivery]:
    """The same deliveries in a random order (a new list)."""
    out = list(deliveries)
    rng.shuffle(out)
    return out


def with_late(
    deliveries: list[Delivery], rng: random.Random, fraction: float = 0.1
) -> list[Delivery]:
    """Move a random `fraction` of the deliveries to the end, as if spooled and sent hours later.

    Bodies and `ts` are unchanged (a late event keeps the time it happened); the moved ones
    keep their relative order. At least one is moved when `fraction` > 0.
    """
    if not deliveries or fraction <= 0:
        return list(deliveries)
    count = min(len(deliveries), max(1, round(len(deliveries) * fraction)))
    late = set(rng.sample(range(len(deliveries)), count))
    on_time = [d for i, d in enumerate(deliveries) if i not in late]
    return on_time + [d for i, d in enumerate(deliveries) if i in late]


# --------------------------------------------------------------------------- ids and time


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def _base36(n: int) -> str:
    digits = ""
    while True:
        n, rest = divmod(n, 36)
        digits = _B36[rest] + digits
        if not n:
            return digits


def _ms_to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds and Z, as `voight hook` stamps it."""
    dt = _ms_to_dt(ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def trace_id_at(ms: int, rng: random.Random) -> str:
    """`t_<base36 ms timestamp>_<8 hex>`, the trace id format of SPEC section 3."""
    return f"t_{_base36(ms)}_{_hex(rng, 8)}"


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class _Project:
    """A code base the agent works in: its files, commands and the texts it produces."""

    name: str
    lang: str
    sources: tuple[str, ...]
    test_cmd: str
    failure: str
    edits: tuple[tuple[str, str], ...]
    grep: tuple[str, ...]
    glob: str
    docs_url: str
    new_files: tuple[str, ...]
    tasks: tuple[str, ...]
    questions: tuple[str, ...]
    filler: tuple[str, ...]
    notebook: str = ""


_PROJECTS = (
    _Project(
        name="billing-api", lang="python",
        sources=("app/models.py", "app/views.py", "app/serializers.py", "app/tasks.py",
                 "tests/test_views.py", "tests/test_models.py"),
        test_cmd="pytest -q",
        failure="FAILED tests/test_views.py::test_partial_refund - "
                "AssertionError: assert 402 == 200\n1 failed, 41 passed in 3.12s",
        edits=(("return total", "return total.quantize(CENTS)"),
               ("def refund(self, amount):", "def refund(self, amount: Decimal) -> None:"),
               ("timeout=30", "timeout=settings.HTTP_TIMEOUT"),
               ("if not invoice:", "if invoice is None:")),
        grep=("def refund", "HTTP_TIMEOUT", "class Invoice"),
        glob="**/*.py",
        docs_url="https://docs.djangoproject.com/en/5.2/ref/models/querysets/",
        new_files=("tests/test_refunds.py", "app/money.py", "docs/refunds.md"),
        tasks=("Fix the failing partial refund test", "Add pagination to the invoices endpoint",
               "Make the refund task retry on timeouts", "Use a CENTS constant in totals",
               "Write tests for the invoice serializer", "Rename Invoice.total to amount_due"),
        questions=("What does the retry logic in app/tasks.py do?",
                   "Why do we use select_related in the invoice view?",
                   "Summarize how refunds flow through the code"),
        filler=("import logging", "", "logger = logging.getLogger(__name__)", "",
                "def helper_{i}(value):", "    return value", ""),
        notebook="notebooks/revenue.ipynb",
    ),
    _Project(
        name="web-dashboard", lang="typescript",
        sources=("src/App.tsx", "src/api/client.ts", "src/components/Chart.tsx",
                 "src/hooks/useSession.ts", "src/components/Chart.test.tsx"),
        test_cmd="npm test -- --run",
        failure="Error: Cannot find module 'express'\nRequire stack:\n- /src/api/client.ts",
        edits=(("const data = await res.json();", "const data = (await res.json()) as Summary;"),
               ("useEffect(() => {", "useLayoutEffect(() => {"),
               ("export default Chart;", "export default memo(Chart);"),
               ("retries: 1", "retries: 3")),
        grep=("useSession", "fetchSummary", "export default"),
        glob="src/**/*.tsx",
        docs_url="https://react.dev/reference/react/useEffect",
        new_files=("src/components/Legend.tsx", "src/api/types.ts"),
        tasks=("Add a legend to the cost chart", "Fix the flaky Chart test",
               "Type the API client responses", "Show a spinner while sessions load",
               "Retry failed API calls three times"),
        questions=("How does useSession cache its data?",
                   "What is the difference between useEffect and useLayoutEffect here?"),
        filler=("import {{ useState }} from 'react';", "",
                "export function helper{i}(value: number) {{", "  return value;", "}}", ""),
    ),
    _Project(
        name="ingest-gateway", lang="go",
        sources=("cmd/gateway/main.go", "internal/queue/queue.go", "internal/queue/queue_test.go",
                 "internal/http/handler.go"),
        test_cmd="go test ./...",
        failure="--- FAIL: TestEnqueueBatch (0.00s)\n    queue_test.go:42: got 9 items, want 10\n"
                "FAIL\tgithub.com/acme/ingest-gateway/internal/queue\t0.014s",
        edits=(("return nil", 'return fmt.Errorf("enqueue: %w", err)'),
               ("for i := 0; i < n; i++ {", "for i := range n {"),
               ("batchSize = 100", "batchSize = 500"),
               ("ctx := context.Background()", "ctx := r.Context()")),
        grep=("func Enqueue", "batchSize", "context.Background"),
        glob="**/*_test.go",
        docs_url="https://pkg.go.dev/context",
        new_files=("internal/queue/metrics.go", "docs/ARCHITECTURE.md"),
        tasks=("Fix the off-by-one in EnqueueBatch", "Propagate the request context to the queue",
               "Add Prometheus metrics for queue depth", "Raise the batch size and benchmark it"),
        questions=("Why does the handler use a buffered channel?",
                   "Explain the shutdown sequence in main.go"),
        filler=("package queue", "", "// helper{i} is used by the batcher.",
                "func helper{i}(v int) int {{", "\treturn v", "}}", ""),
    ),
)

_HOMES = ("/home/dev", "/home/ana", "/Users/marc")
_MODELS = ("claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5-20251001", "claude-sonnet-5")
_RISKY = ("rm -rf node_modules && npm install", "git push --force origin main",
          "git reset --hard origin/main", "docker system prune -af")
_WAKEUPS = (
    ("waiting for CI on the open pull request",
     "Check the CI run for the open pull request and fix any failure"),
    ("deploy to staging takes a few minutes",
     "Check that the staging deploy finished and the health check is green"),
    ("the nightly export is still running",
     "See whether the export job completed and summarize the result"),
)
_ANSWERS = (
    "It retries three times with exponential backoff, then marks the job failed.",
    "Because the view reads the customer for every row; select_related saves one query per row.",
    "The request enters the handler, is validated, queued, and a worker applies it in batches.",
)


def _agent_profile(rng: random.Random) -> dict:
    project = rng.choice(_PROJECTS)
    return {
        "cwd": f"{rng.choice(_HOMES)}/src/{project.name}",
        "model": rng.choice(_MODELS[:2]),
        "privacy": rng.choice(("standard", "standard", "standard", "full", "minimal")),
    }


# --------------------------------------------------------------------------- turn plans


@dataclass
class _TurnPlan:
    """What one prompt's turn will contain (decided up front so coverage is guaranteed)."""

    major: str = ""  # "" | text | subagent | failure | wakeup | reject | stop_failure
    permission: bool = False  # one tool call asks for (and gets) permission
    double_stop: bool = False  # a Stop hook blocks once: Stop, then Stop stop_hook_active
    # "" | auto (at the turn's start) | manual (/compact before the prompt; done once run)
    compact: str = ""
    parallel: bool = False  # two Reads in one parallel batch
    wakeup_follow: bool = False  # this turn's prompt is the one a ScheduleWakeup fires


_MAJORS = ("text", "subagent", "failure", "wakeup", "reject", "stop_failure")


def _plan_turns(rng: random.Random, n: int) -> list[_TurnPlan]:
    """Spread the interesting cases over the turns.

    Sessions of 8+ prompts always get a text response, a subagent, a tool failure, a wakeup
    and a permission request; 5-7 prompts get three of the first four; the rest is by chance.
    """
    plans = [_TurnPlan() for _ in range(n)]
    core = ["text", "subagent", "failure", "wakeup"]
    if n >= 8:
        chosen = core + [m for m in ("reject", "stop_failure") if rng.random() < 0.6]
    elif n >= 5:
        chosen = rng.sample(core, 3) + [m for m in ("reject", "stop_failure") if rng.random() < 0.4]
    else:
        chosen = [m for m in _MAJORS if rng.random() < 0.35]
    free = list(range(n))
    # Constrained ones first: a wakeup needs a next turn; a rejection should not end the session.
    for major in sorted(chosen, key=lambda m: m not in ("wakeup", "reject")):
        spots = [i for i in free if major not in ("wakeup", "reject") or i < n - 1]
        if major == "wakeup":
            spots = [i for i in spots if not plans[i + 1].wakeup_follow]
        if not spots:
            continue
        at = rng.choice(spots)
        free.remove(at)
        plans[at].major = major
        if major == "wakeup":
            plans[at + 1].wakeup_follow = True
    _add_minor_features(rng, plans)
    return plans


def _add_minor_features(rng: random.Random, plans: list[_TurnPlan]) -> None:
    n = len(plans)
    tool_turns = [i for i, p in enumerate(plans) if p.major not in ("text", "reject")]
    if tool_turns and (n >= 8 or rng.random() < 0.6):
        plans[rng.choice(tool_turns)].permission = True
    for i in tool_turns:
        if rng.random() < 0.2:
            plans[i].permission = True
        plans[i].parallel = rng.random() < 0.3
    stopping = [i for i, p in enumerate(plans) if p.major not in ("reject", "stop_failure")]
    if stopping and rng.random() < (0.5 if n >= 5 else 0.25):
        plans[rng.choice(stopping)].double_stop = True
    if n and rng.random() < (0.5 if n >= 5 else 0.25):
        plans[rng.randrange(n)].compact = rng.choice(("auto", "manual"))


def _pick_resume_turn(rng: random.Random, plans: list[_TurnPlan]) -> int | None:
    """The turn before which the user quits and resumes (never between a wakeup and its prompt)."""
    spots = [i for i in range(1, len(plans)) if not plans[i].wakeup_follow]
    return rng.choice(spots) if spots else None


# --------------------------------------------------------------------------- session state


@dataclass
class _Call:
    """One tool call: what the model asked for and what the tool answered."""

    name: str
    input: dict
    response: Any = None
    duration_ms: int = 100
    error: str = ""  # non-empty: the call fails (PostToolUseFailure)
    tool_use_id: str = ""


@dataclass
class _Subagent:
    agent_id: str
    agent_type: str
    context: int  # tokens in the subagent's context (its cache reads grow from this)


@dataclass
class _Request:
    """One model request as the transcript (and so the usage events) reports it."""

    request_id: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    snapshot_output: int | None  # a streaming snapshot with a lower output_tokens, sent first

    def cost(self, model: str) -> Decimal:
        cost = request_cost(
            model, input_tokens=self.input_tokens, output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens, cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
        )
        return cost if cost is not None else Decimal(0)


@dataclass
class _Trace:
    trace_id: str
    prompt: str
    prompt_id: str
    prompt_source: str
    started_at: datetime
    tool_ids: set[str] = field(default_factory=set)
    error_count: int = 0
    files: set[str] = field(default_factory=set)
    has_stop: bool = False
    requests: list[_Request] = field(default_factory=list)

    def as_dict(self, model: str, raw: bool) -> dict:
        return {
            "trace_id": None if raw else self.trace_id,
            "prompt": self.prompt,
            "prompt_source": self.prompt_source,
            "kind": "text_response" if self.has_stop and not self.tool_ids else "tools",
            "tool_count": len(self.tool_ids),
            "error_count": self.error_count,
            "files_touched": sorted(self.files),
            "input_tokens": sum(r.input_tokens for r in self.requests),
            "output_tokens": sum(r.output_tokens for r in self.requests),
            "cache_read_tokens": sum(r.cache_read_tokens for r in self.requests),
            "cache_write_tokens": sum(r.cache_write_tokens for r in self.requests),
            "cost_usd": sum((r.cost(model) for r in self.requests), Decimal(0)),
            "prompt_id": self.prompt_id,
            "started_at": self.started_at,
        }


class _Sim:
    """One session being generated: the clock, the open trace, and the ground-truth ledger."""

    def __init__(self, rng: random.Random, *, agent_slug: str, start: datetime, raw: bool,
                 model: str, privacy: str, cwd: str | None) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.rng = rng
        self.agent_slug = agent_slug
        self.raw = raw
        self.model = model
        self.privacy = privacy
        self.project = rng.choice(_PROJECTS)
        self.cwd = cwd or f"{rng.choice(_HOMES)}/src/{self.project.name}"
        self.session_id = _uuid(rng)
        home = re.match(r"^(/Users/[^/]+|/home/[^/]+)", self.cwd)
        project_dir = re.sub(r"[^A-Za-z0-9]", "-", self.cwd)
        self.transcript_path = (f"{home.group(1) if home else '/home/dev'}/.claude/projects/"
                                f"{project_dir}/{self.session_id}.jsonl")
        self.git_sha = _hex(rng, 40)
        self.permission_mode = rng.choice(("default", "default", "default", "acceptEdits"))
        self.one_hour_cache = rng.random() < 0.3
        self.context = rng.randint(11_000, 18_000)
        self.now = (start.astimezone(UTC) - EPOCH) // ONE_MS
        self.last_emitted = -1
        self.deliveries: list[Delivery] = []
        self.trace: _Trace | None = None
        self.traces: list[_Trace] = []
        self.prompt_id: str | None = None
        self.tools: dict[str, str] = {}  # tool_use_id -> tool_name
        self.files: set[str] = set()
        self.file_lines: dict[str, list[str]] = {}
        self.todos: list[dict] = []
        self.used_prompts: set[str] = set()
        self.errors = 0
        self.pending: list[_Request] = []  # made since the last Stop, not yet reported
        self.reported: list[_Request] = []
        self.wakeup: dict | None = None  # a ScheduleWakeup waiting to fire
        self.ended = False
        self.end_reason = ""

    # ---- clock

    def advance(self, lo: float, hi: float) -> None:
        """Let `lo`..`hi` seconds pass."""
        self.now += max(1, round(self.rng.uniform(lo, hi) * 1000))

    def tick(self) -> None:
        """A few milliseconds: hooks fired back to back."""
        self.now += self.rng.randint(3, 60)

    def settle(self) -> None:
        """Make `now` later than the last delivery (timestamps are strictly increasing)."""
        self.now = max(self.now, self.last_emitted + 1)

    # ---- emitting

    def emit(self, payload: dict, metadata: dict | None = None) -> None:
        """Record one hook event as a delivery; the only place hook deliveries are made."""
        self.settle()
        self.last_emitted = self.now
        event_id = _uuid(self.rng)  # drawn in raw mode too, so both modes share one stream
        if self.raw:
            if payload["hook_event_name"] != "SessionStart":  # http hooks never get it
                self.deliveries.append(Delivery("raw", payload, _ms_to_dt(self.now)))
            return
        body: dict[str, Any] = {"id": event_id, "timestamp": _iso(self.now),
                                "source": "claude_code", "agent_id": self.agent_slug}
        if self.trace:
            body["trace_id"] = self.trace.trace_id
        meta: dict[str, Any] = {"privacyLevel": self.privacy,
                                "git": {"branch": "main", "sha": self.git_sha}}
        meta.update(metadata or {})
        body["metadata"] = meta
        body["payload"] = payload
        self.deliveries.append(Delivery("wrapped", body, _ms_to_dt(self.now)))

    def emit_usage(self, request: _Request, output_tokens: int) -> None:
        """A usage event as `voight hook` sends it on Stop, read from the transcript."""
        self.now = max(self.now + self.rng.randint(5, 80), self.last_emitted + 1)
        self.last_emitted = self.now
        if self.raw:  # http hooks carry no tokens
            return
        body = {
            "id": f"usage-{request.request_id}-{output_tokens}", "type": "usage",
            "timestamp": _iso(self.now), "session_id": self.session_id,
            "agent_id": self.agent_slug, "trace_id": self.trace.trace_id, "model": self.model,
            "request_id": request.request_id, "input_tokens": request.input_tokens,
            "output_tokens": output_tokens, "cache_read_tokens": request.cache_read_tokens,
            "cache_write_tokens": request.cache_write_tokens,
            "cache_write_1h_tokens": request.cache_write_1h_tokens,
            "metadata": {"privacyLevel": self.privacy},
        }
        self.deliveries.append(Delivery("usage", body, _ms_to_dt(self.now)))

    def base(self, event: str, sub: _Subagent | None = None) -> dict:
        """The common input fields, in the documented order, present where the docs show them."""
        payload: dict[str, Any] = {"session_id": self.session_id,
                                   "transcript_path": self.transcript_path, "cwd": self.cwd}
        if self.prompt_id:
            payload["prompt_id"] = self.prompt_id
        if event in PERMISSION_MODE_EVENTS:
            payload["permission_mode"] = self.permission_mode
        if sub:
            payload["agent_id"] = sub.agent_id
            payload["agent_type"] = sub.agent_type
        payload["hook_event_name"] = event
        return payload

    # ---- one function per hook shape

    def session_start(self, source: str) -> None:
        """SessionStart: source startup|resume|compact, with the optional model."""
        self.emit({**self.base("SessionStart"), "source": source, "model": self.model})

    def user_prompt(self, text: str, wakeup: dict | None = None) -> None:
        """UserPromptSubmit: opens a trace and a prompt_id; a fired wakeup is a system prompt."""
        self.settle()  # so the trace id's timestamp is the prompt's
        self.prompt_id = _uuid(self.rng)
        self.trace = _Trace(trace_id_at(self.now, self.rng), text, self.prompt_id,
                            "system" if wakeup else "user", _ms_to_dt(self.now))
        self.traces.append(self.trace)
        metadata = None
        if wakeup:
            metadata = {"promptSource": "system",
                        "wakeup": {"delaySeconds": wakeup["delay"], "reason": wakeup["reason"]}}
        self.emit({**self.base("UserPromptSubmit"), "prompt": text}, metadata)

    def pre_tool_use(self, call: _Call, sub: _Subagent | None = None) -> None:
        """PreToolUse: the call is counted (by tool_use_id) and its file, if an edit, touched."""
        self.tools[call.tool_use_id] = call.name
        self.trace.tool_ids.add(call.tool_use_id)
        if call.name in EDIT_TOOLS:
            path = call.input.get("file_path") or call.input.get("notebook_path")
            self.files.add(path)
            self.trace.files.add(path)
        self.emit({**self.base("PreToolUse", sub), "tool_name": call.name,
                   "tool_input": copy.deepcopy(call.input), "tool_use_id": call.tool_use_id})

    def permission_request(self, call: _Call) -> None:
        """PermissionRequest: no tool_use_id; Bash gets a permission suggestion."""
        payload = {**self.base("PermissionRequest"), "tool_name": call.name,
                   "tool_input": copy.deepcopy(call.input)}
        if call.name == "Bash":
            payload["permission_suggestions"] = [{
                "type": "addRules",
                "rules": [{"toolName": "Bash", "ruleContent": call.input["command"]}],
                "behavior": "allow", "destination": "localSettings"}]
        self.emit(payload)

    def post_tool_use(self, call: _Call, sub: _Subagent | None = None) -> None:
        self.emit({**self.base("PostToolUse", sub), "tool_name": call.name,
                   "tool_input": copy.deepcopy(call.input),
                   "tool_response": copy.deepcopy(call.response),
                   "tool_use_id": call.tool_use_id, "duration_ms": call.duration_ms})

    def post_tool_use_failure(self, call: _Call, sub: _Subagent | None = None) -> None:
        """PostToolUseFailure: an error (Bash: `Exit code N` first line)."""
        self.errors += 1
        self.trace.error_count += 1
        self.emit({**self.base("PostToolUseFailure", sub), "tool_name": call.name,
                   "tool_input": copy.deepcopy(call.input), "tool_use_id": call.tool_use_id,
                   "error": call.error, "is_interrupt": False, "duration_ms": call.duration_ms})

    def notification(self, kind: str, tool_name: str = "") -> None:
        if kind == "permission_prompt":
            fields = {"message": f"Claude needs your permission to use {tool_name}",
                      "title": "Permission needed", "notification_type": kind}
        else:
            fields = {"message": "Claude is waiting for your input", "notification_type": kind}
        self.emit({**self.base("Notification"), **fields})

    def subagent_start(self, sub: _Subagent) -> None:
        self.emit(self.base("SubagentStart", sub))

    def subagent_stop(self, sub: _Subagent, message: str) -> None:
        agent_transcript = (self.transcript_path.removesuffix(".jsonl")
                            + f"/subagents/agent-{sub.agent_id}.jsonl")
        self.emit({**self.base("SubagentStop", sub), "stop_hook_active": False,
                   "agent_transcript_path": agent_transcript, "last_assistant_message": message,
                   "background_tasks": [], "session_crons": []})

    def pre_compact(self, trigger: str) -> None:
        instructions = "" if trigger == "auto" else self.rng.choice(
            ("", "keep the failing test output", "focus on the open task"))
        self.emit({**self.base("PreCompact"), "trigger": trigger,
                   "custom_instructions": instructions})

    def post_compact(self, trigger: str) -> None:
        summary = f"Working in {self.project.name}: {self.trace.prompt if self.trace else ''}"
        self.emit({**self.base("PostCompact"), "trigger": trigger, "compact_summary": summary})

    def stop(self, active: bool, message: str) -> None:
        """Stop: closes the turn; pending wakeups are listed in session_crons."""
        crons = []
        if self.wakeup:
            fire = _ms_to_dt(self.wakeup["fire_ms"])
            crons = [{"id": self.wakeup["cron_id"],
                      "schedule": f"{fire.minute} {fire.hour} {fire.day} {fire.month} *",
                      "recurring": False, "prompt": self.wakeup["prompt"]}]
        self.trace.has_stop = True
        self.emit({**self.base("Stop"), "stop_hook_active": active,
                   "last_assistant_message": message, "background_tasks": [],
                   "session_crons": crons})
        self.report_usage()

    def stop_failure(self) -> None:
        """StopFailure: the API failed the turn (counted as an error), no Stop."""
        self.errors += 1
        self.trace.error_count += 1
        self.emit({**self.base("StopFailure"), "error": "rate_limit",
                   "error_details": "429 Too Many Requests: rate_limit_error",
                   "last_assistant_message": "API Error: Rate limit reached"})
        self.report_usage()

    def session_end(self, reason: str) -> None:
        self.emit({**self.base("SessionEnd"), "reason": reason})
        self.ended, self.end_reason = True, reason

    # ---- model requests and usage

    def model_request(self, final: bool = False, sub: _Subagent | None = None) -> _Request:
        """The model thinks, then answers: one request, reported at the next Stop."""
        if final:
            self.advance(2, 20)
        else:
            self.advance(1, 12)
        holder = sub or self
        cache_write = 0 if self.rng.random() < 0.15 else min(
            5000, 50 + int(self.rng.expovariate(1 / 900)))
        output = self.rng.randint(200, 2000) if final else self.rng.randint(50, 600)
        request = _Request(
            request_id="req_011C" + _alnum(self.rng, 20),
            input_tokens=self.rng.randint(1, 10), output_tokens=output,
            cache_read_tokens=min(holder.context, 120_000), cache_write_tokens=cache_write,
            cache_write_1h_tokens=cache_write if self.one_hour_cache else 0,
            snapshot_output=self.rng.randint(1, output - 1) if self.rng.random() < 0.1 else None,
        )
        holder.context += cache_write  # what was written is read back by the next request
        self.pending.append(request)
        return request

    def report_usage(self) -> None:
        """After Stop/StopFailure, one usage event per request made since (snapshots first)."""
        for request in self.pending:
            if request.snapshot_output is not None:
                self.emit_usage(request, request.snapshot_output)
            self.emit_usage(request, request.output_tokens)
            if not self.raw:
                self.reported.append(request)
                self.trace.requests.append(request)
        self.pending = []

    # ---- tool calls

    def run_tool(self, call: _Call, *, sub: _Subagent | None = None, permission: bool = False,
                 reject: bool = False) -> None:
        """PreToolUse [, PermissionRequest (+ permission_prompt)] and PostToolUse or Failure."""
        call.tool_use_id = "toolu_01" + _alnum(self.rng, 22)
        self.pre_tool_use(call, sub)
        if permission or reject:
            self.tick()
            self.permission_request(call)
            wait = self.rng.uniform(1.5, 25)
            if wait > 6:  # Claude Code notifies after ~6 s without an answer
                self.advance(6, 6)
                self.notification("permission_prompt", call.name)
                wait -= 6
            self.advance(wait, wait)
            if reject:
                return
        self.now += call.duration_ms
        if call.error:
            self.post_tool_use_failure(call, sub)
        else:
            self.post_tool_use(call, sub)

    def step(self, call: _Call, **options: Any) -> None:
        """A model request that produces one tool call, then the call."""
        self.model_request()
        self.run_tool(call, **options)

    def parallel_reads(self) -> None:
        """Two Reads from one request: both PreToolUse first, then both PostToolUse."""
        self.model_request()
        calls = [self.read(), self.read()]
        for call in calls:
            call.tool_use_id = "toolu_01" + _alnum(self.rng, 22)
            self.pre_tool_use(call)
            self.tick()
        for call in calls:
            self.now += call.duration_ms // 2
            self.post_tool_use(call)

    def agent_step(self) -> None:
        """Agent: PreToolUse, SubagentStart, the subagent's calls, SubagentStop, PostToolUse."""
        agent_type = self.rng.choice(("Explore", "general-purpose"))
        topic = self.rng.choice(self.project.grep)
        call = _Call("Agent", {
            "description": f"Find {topic}",
            "prompt": f"Search {self.project.name} for {topic} "
                      "and report the files and functions involved.",
            "subagent_type": agent_type})
        self.model_request()
        call.tool_use_id = "toolu_01" + _alnum(self.rng, 22)
        self.pre_tool_use(call)
        started = self.now
        self.tick()
        sub = _Subagent("a" + _hex(self.rng, 16), agent_type, self.rng.randint(10_000, 14_000))
        self.subagent_start(sub)
        tool_uses = self.rng.randint(2, 4)
        for _ in range(tool_uses):
            self.model_request(sub=sub)
            self.run_tool(self.rng.choice((self.read, self.grep, self.glob))(), sub=sub)
        last = self.model_request(final=True, sub=sub)
        message = f"Found {tool_uses} places; the main logic is in {self.project.sources[0]}."
        self.subagent_stop(sub, message)
        self.tick()
        call.duration_ms = self.now - started
        call.response = {
            "status": "completed", "agentId": sub.agent_id, "agentType": agent_type,
            "content": [{"type": "text", "text": message}], "totalToolUseCount": tool_uses,
            "totalDurationMs": call.duration_ms,
            "totalTokens": last.input_tokens + last.cache_read_tokens + last.cache_write_tokens
            + last.output_tokens,
            "usage": {"input_tokens": last.input_tokens, "output_tokens": last.output_tokens,
                      "cache_creation_input_tokens": last.cache_write_tokens,
                      "cache_read_input_tokens": last.cache_read_tokens},
            "prompt": call.input["prompt"]}
        self.post_tool_use(call)

    # ---- tool shapes (tool_input / tool_response as CLAUDE_CODE.md documents them)

    def path(self, relative: str) -> str:
        return f"{self.cwd}/{relative}"

    def lines_of(self, path: str) -> list[str]:
        """The file's current text (made up once, then kept so repeated edits agree)."""
        if path not in self.file_lines:
            count = self.rng.randint(20, 60)
            filler = self.project.filler
            self.file_lines[path] = [filler[i % len(filler)].format(i=i // len(filler))
                                     for i in range(count)]
        return self.file_lines[path]

    def ms(self, lo: float, hi: float) -> int:
        """A tool's duration in ms (between 0.1 s and 30 s)."""
        return round(self.rng.uniform(max(lo, 0.1), min(hi, 30)) * 1000)

    def bash(self, command: str, description: str, stdout: str = "", error: str = "") -> _Call:
        return _Call("Bash", {"command": command, "description": description, "timeout": 120000},
                     {"stdout": stdout, "stderr": "", "interrupted": False, "isImage": False},
                     self.ms(0.3, 30), error)

    def run_tests(self, fail: bool = False) -> _Call:
        if fail:
            return self.bash(self.project.test_cmd, "Run test suite",
                             error=f"Exit code 1\n{self.project.failure}")
        return self.bash(self.project.test_cmd, "Run test suite",
                         stdout=f"ok  {self.rng.randint(20, 90)} passed")

    def read(self) -> _Call:
        path = self.path(self.rng.choice(self.project.sources))
        lines = self.lines_of(path)
        return _Call("Read", {"file_path": path}, {"type": "text", "file": {
            "filePath": path, "content": "\n".join(lines), "numLines": len(lines),
            "startLine": 1, "totalLines": len(lines)}}, self.ms(0.1, 0.6))

    def grep(self) -> _Call:
        hits = sorted(self.path(p) for p in self.rng.sample(self.project.sources, 2))
        return _Call("Grep", {"pattern": self.rng.choice(self.project.grep), "path": self.cwd,
                              "output_mode": "files_with_matches"},
                     {"mode": "files_with_matches", "numFiles": len(hits), "filenames": hits},
                     self.ms(0.1, 1.5))

    def glob(self) -> _Call:
        names = [self.path(p) for p in self.project.sources]
        return _Call("Glob", {"pattern": self.project.glob},
                     {"durationMs": self.rng.randint(5, 80), "numFiles": len(names),
                      "filenames": names, "truncated": False}, self.ms(0.1, 0.8))

    def edit(self, relative: str) -> _Call:
        """Edit: old_string is put in the file if missing, so originalFile always holds it."""
        path = self.path(relative)
        lines = self.lines_of(path)
        old, new = self.rng.choice(self.project.edits)
        if old not in lines:
            lines.insert(self.rng.randrange(len(lines)), old)
        original = "\n".join(lines)
        at = lines.index(old)
        lines[at] = new
        patch = [{"oldStart": at + 1, "oldLines": 1, "newStart": at + 1, "newLines": 1,
                  "lines": [f"-{old}", f"+{new}"]}]
        return _Call("Edit", {"file_path": path, "old_string": old, "new_string": new,
                              "replace_all": False},
                     {"filePath": path, "oldString": old, "newString": new,
                      "originalFile": original, "structuredPatch": patch,
                      "userModified": False, "replaceAll": False}, self.ms(0.1, 0.5))

    def multi_edit(self, relative: str) -> _Call:
        path = self.path(relative)
        original = "\n".join(self.lines_of(path))
        edits = [{"old_string": old, "new_string": new}
                 for old, new in self.rng.sample(self.project.edits, 2)]
        return _Call("MultiEdit", {"file_path": path, "edits": edits},
                     {"filePath": path, "edits": edits, "originalFileContents": original,
                      "structuredPatch": [], "userModified": False}, self.ms(0.1, 0.5))

    def write(self) -> _Call:
        relative = self.rng.choice(self.project.new_files)
        path = self.path(relative)
        existed = path in self.file_lines
        content = "\n".join(self.lines_of(path)[:12])
        return _Call("Write", {"file_path": path, "content": content},
                     {"type": "update" if existed else "create", "filePath": path,
                      "content": content, "structuredPatch": [], "originalFile": None},
                     self.ms(0.1, 0.4))

    def notebook_edit(self) -> _Call:
        path = self.path(self.project.notebook)
        source = "df.groupby('month')['amount'].sum().plot()"
        cell = "cell-" + str(self.rng.randint(1, 12))
        return _Call("NotebookEdit", {"notebook_path": path, "cell_id": cell,
                                      "new_source": source, "cell_type": "code",
                                      "edit_mode": "replace"},
                     {"new_source": source, "cell_id": cell, "cell_type": "code",
                      "language": "python", "edit_mode": "replace", "error": ""},
                     self.ms(0.1, 0.4))

    def web_fetch(self) -> _Call:
        url = self.project.docs_url
        return _Call("WebFetch", {"url": url, "prompt": "Summarize the relevant API"},
                     {"bytes": self.rng.randint(20_000, 400_000), "code": 200, "codeText": "OK",
                      "result": "The page documents the API and its options.",
                      "durationMs": self.rng.randint(400, 6000), "url": url}, self.ms(1, 12))

    def todo_write(self) -> _Call:
        old = copy.deepcopy(self.todos)
        task = self.trace.prompt
        self.todos = [
            {"content": task, "status": "in_progress", "activeForm": f"Working on: {task}"},
            {"content": "Run the tests", "status": "pending", "activeForm": "Running the tests"},
        ]
        return _Call("TodoWrite", {"todos": copy.deepcopy(self.todos)},
                     {"oldTodos": old, "newTodos": copy.deepcopy(self.todos)}, self.ms(0.1, 0.3))

    def create_issue(self) -> _Call:
        """An MCP tool: its tool_response is the MCP content list, not an object."""
        number = self.rng.randint(100, 999)
        title = f"Follow-up: {self.trace.prompt}"
        issue = {"number": number, "state": "open", "title": title,
                 "html_url": f"https://github.com/acme/{self.project.name}/issues/{number}"}
        return _Call("mcp__github__create_issue",
                     {"owner": "acme", "repo": self.project.name, "title": title,
                      "body": "Found while working on this task."},
                     [{"type": "text", "text": json.dumps(issue)}], self.ms(0.6, 4))

    def schedule_wakeup(self) -> _Call:
        """ScheduleWakeup; remembers the wakeup so the prompt it fires is a system prompt."""
        delay = self.rng.choice((60, 120, 270, 300, 600, 900, 1200, 1800))
        reason, prompt = self.rng.choice(_WAKEUPS)
        duration = self.ms(0.1, 0.2)
        fire_ms = self.now + duration + delay * 1000  # the call runs `duration` after now
        self.wakeup = {"delay": delay, "reason": reason, "prompt": prompt,
                       "fire_ms": fire_ms, "cron_id": _hex(self.rng, 8)}
        return _Call("ScheduleWakeup", {"delaySeconds": delay, "reason": reason, "prompt": prompt},
                     {"scheduledFor": fire_ms, "clampedDelaySeconds": delay, "wasClamped": False},
                     duration)

    # ---- turns

    def run_turn(self, plan: _TurnPlan) -> None:
        """One prompt and everything up to its Stop (or StopFailure, or a rejection)."""
        wakeup = self.wakeup if plan.wakeup_follow else None
        self.wakeup = None
        if wakeup:
            text = wakeup["prompt"]
        else:
            text = self.next_prompt(self.project.questions if plan.major == "text"
                                    else self.project.tasks)
        self.user_prompt(text, wakeup)
        # A planned one (a manual one not done before the prompt), or a full context.
        if plan.compact in ("auto", "manual") or self.context > AUTO_COMPACT_AT:
            self.compact("auto")
        if plan.major == "text":
            self.model_request(final=True)
            self.stop(False, self.rng.choice(_ANSWERS))
        else:
            outcome = self.tool_work(plan)
            if outcome == "stop_failure":
                self.advance(2, 30)  # the next request fails after its retries
                self.stop_failure()
            elif outcome == "stop":
                self.model_request(final=True)
                self.stop(False, self.summary(plan))
            # "rejected": the user said no and typed a new prompt; no Stop fires
        if plan.double_stop and self.trace.has_stop:
            self.model_request(final=True)  # the Stop hook blocked; Claude carries on
            self.stop(True, "I also ran the linter; it reports no issues.")

    def next_prompt(self, choices: tuple[str, ...]) -> str:
        """A prompt not used yet in this session while there are some (users rarely repeat)."""
        fresh = [c for c in choices if c not in self.used_prompts] or list(choices)
        text = self.rng.choice(fresh)
        self.used_prompts.add(text)
        return text

    def tool_work(self, plan: _TurnPlan) -> str:
        """The tool calls of a working turn; returns how the turn ends."""
        permission = plan.permission
        if self.rng.random() < 0.3:
            self.step(self.todo_write())
        if plan.major == "subagent":
            self.agent_step()
        if plan.parallel:
            self.parallel_reads()
        for _ in range(self.rng.randint(1, 2)):
            self.step(self.rng.choice((self.read, self.read, self.grep, self.glob))())
        if plan.major == "reject":
            self.step(self.bash(self.rng.choice(_RISKY), "Clean up and reinstall"), reject=True)
            return "rejected"
        edited = self.edits()
        if self.rng.random() < 0.25:
            self.step(self.web_fetch(), permission=permission)
            permission = False
        if plan.major == "failure":
            self.step(self.run_tests(fail=True), permission=permission)
            permission = False
            self.step(self.edit(edited))  # the fix, often the file edited just before
        self.step(self.run_tests(), permission=permission)
        if self.rng.random() < 0.2:
            self.step(self.create_issue())
        if plan.major == "stop_failure":
            return "stop_failure"
        if plan.major == "wakeup":
            self.model_request()  # before building the call: scheduledFor counts from the call
            self.run_tool(self.schedule_wakeup())
        return "stop"

    def edits(self) -> str:
        """One to three edits (sometimes the same file twice); returns the last file edited."""
        relative = self.rng.choice(self.project.sources)
        self.step(self.edit(relative))
        roll = self.rng.random()
        if roll < 0.35:
            self.step(self.edit(relative))
        elif roll < 0.55:
            self.step(self.write())
        elif roll < 0.62:
            self.step(self.multi_edit(self.rng.choice(self.project.sources)))
        elif roll < 0.67 and self.project.notebook:
            self.step(self.notebook_edit())
        return relative

    def summary(self, plan: _TurnPlan) -> str:
        if plan.major == "wakeup":
            return f"Scheduled a check in {self.wakeup['delay'] // 60} minutes."
        return f"Done: {self.trace.prompt.lower()}. The test suite passes."

    def compact(self, trigger: str) -> None:
        """PreCompact, PostCompact, then SessionStart source=compact; the context shrinks."""
        self.advance(0.5, 3)
        self.pre_compact(trigger)
        self.advance(15, 60)
        self.post_compact(trigger)
        self.tick()
        self.session_start("compact")
        self.context = self.rng.randint(12_000, 20_000)

    def between_turns(self, plan: _TurnPlan) -> None:
        """The pause before the next prompt: a wakeup firing, or the user (idle, /compact)."""
        if plan.wakeup_follow and self.wakeup:
            self.now = max(self.now + 1, self.wakeup["fire_ms"] + self.rng.randint(200, 2500))
            return
        gap = self.rng.uniform(10, 120) if self.rng.random() < 0.7 else self.rng.uniform(120, 600)
        if plan.compact == "manual":
            gap = max(gap, 120)
        prompt_at = self.now + round(gap * 1000)
        if gap > 65:  # Claude Code notifies ~60 s after it finished and the user is idle
            self.advance(60, 60)
            self.notification("idle_prompt")
            if self.rng.random() < 0.3:  # fired twice, byte-identical
                self.now += self.rng.randint(1, 400)
                self.notification("idle_prompt")
        if plan.compact == "manual":
            self.compact("manual")
            plan.compact = "done"
        self.now = max(self.now + 1000, prompt_at)

    def quit_and_resume(self) -> None:
        """The user exits, then comes back with `claude --resume`: same session_id."""
        self.advance(5, 60)
        self.session_end("prompt_input_exit")
        self.ended, self.end_reason = False, ""
        self.wakeup = None
        self.advance(20 * 60, 6 * 3600)
        self.session_start("resume")
        self.advance(3, 60)

    # ---- ground truth

    def result(self) -> SimulatedSession:
        requests = self.reported
        # Byte-identical raw deliveries without a content key (two idle_prompt
        # notifications) are distinct real events: every delivery counts.
        event_count = len(self.deliveries)
        expected = {
            "event_count": event_count,
            "trace_count": len(self.traces),
            "tool_call_count": len(self.tools),
            "distinct_tools": sorted(set(self.tools.values())),
            "error_count": self.errors,
            "files_touched_count": len(self.files),
            "input_tokens": sum(r.input_tokens for r in requests),
            "output_tokens": sum(r.output_tokens for r in requests),
            "cache_read_tokens": sum(r.cache_read_tokens for r in requests),
            "cache_write_tokens": sum(r.cache_write_tokens for r in requests),
            "cost_usd": sum((r.cost(self.model) for r in requests), Decimal(0)),
            "started_at": self.deliveries[0].ts if self.deliveries else None,
            "last_event_at": self.deliveries[-1].ts if self.deliveries else None,
            "ended": self.ended,
            "end_reason": self.end_reason,
            "system_prompts": sum(t.prompt_source == "system" for t in self.traces),
            "text_response_traces": sum(t.has_stop and not t.tool_ids for t in self.traces),
        }
        return SimulatedSession(
            session_id=self.session_id, agent_slug=self.agent_slug,
            deliveries=self.deliveries, expected=expected,
            traces=[t.as_dict(self.model, self.raw) for t in self.traces],
            cwd=self.cwd, model=self.model,
        )
