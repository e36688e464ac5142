"""Model-request reports folded into the timeline step they belong to.

Claude Code's transcript (`usage`) and OTel (`api_request`) report every model request as
an event of its own, so a timeline had one extra row per request, a dozen after each turn.
The timelines show them on the step instead: the step of the same request when one carries
its request id (an `api_error`, say), else the step the report follows in its trace (the
tool call it paid for, or the turn's `stop`), else the first step after it.

A request's figures are those of its `Usage` row, the one the session's and the trace's
totals add up, so a request reported twice (a streaming snapshot and the final count, or the
transcript and OTel) is counted once on its step, as in the totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Case, CharField, F, JSONField, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Cast, JSONObject

from traces.models import Usage
from voight.web import format as fmt

FOLDED_TYPES = ("usage", "api_request")
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def with_request_usage(events: QuerySet) -> QuerySet:
    """Each report with its request's `Usage` figures (`request_usage`), in the same query.

    Usage is keyed by the request id, or `event:<uid>` for a report without one, whose row
    then points at that very event."""
    figures = JSONObject(
        key=F("request_id"), model=F("model"),
        **{name: F(name) for name in TOKEN_FIELDS},
        # As text: a JSON number would come back as a float.
        cost_usd=Cast("cost_usd", CharField()),
    )
    by_request = Usage.objects.filter(team_id=OuterRef("team_id"),
                                      request_id=OuterRef("request_id"))
    by_event = Usage.objects.filter(event_id=OuterRef("pk"))
    report = Q(type__in=FOLDED_TYPES)
    return events.annotate(request_usage=Case(
        When(report & Q(request_id=""), then=Subquery(by_event.values(j=figures)[:1])),
        When(report, then=Subquery(by_request.values(j=figures)[:1])),
        default=None, output_field=JSONField(),
    ))


@dataclass
class StepUsage:
    """The model requests folded into one step, one entry per request."""

    requests: dict[str, dict] = field(default_factory=dict)

    def add(self, key: str, figures: dict) -> None:
        known = self.requests.get(key)
        if known is None:
            self.requests[key] = dict(figures)
            return
        # The same request reported twice without a Usage row to settle it: the larger
        # figure of each field is the final one (the rule the Usage rows follow).
        for name in (*TOKEN_FIELDS, "cost_usd"):
            known[name] = max(known[name], figures[name])

    def merged(self, other: StepUsage | None) -> StepUsage:
        combined = StepUsage({key: dict(value) for key, value in self.requests.items()})
        for key, figures in (other.requests if other else {}).items():
            combined.add(key, figures)
        return combined

    def total(self, name: str):
        return sum((r[name] for r in self.requests.values()),
                   Decimal(0) if name == "cost_usd" else 0)

    @property
    def tokens(self) -> int:
        return sum(self.total(name) for name in TOKEN_FIELDS)

    @property
    def tokens_display(self) -> str:
        return fmt.compact(self.tokens)

    @property
    def total_cost(self) -> Decimal:
        return self.total("cost_usd")

    @property
    def cost_display(self) -> str:
        return fmt.money(self.total_cost)

    @property
    def title(self) -> str:
        count = len(self.requests)
        models = sorted({r["model"] for r in self.requests.values() if r["model"]})
        return (f"{count} model request{'s' if count != 1 else ''}"
                + (f" ({', '.join(models)})" if models else "")
                + f": input {self.total('input_tokens'):,} · output {self.total('output_tokens'):,}"
                + f" · cache read {self.total('cache_read_tokens'):,}"
                + f" · cache write {self.total('cache_write_tokens'):,} · {self.cost_display}")


def request_key(event) -> str:
    """The key its Usage row has (ingest.rollups.usage_key)."""
    return event.request_id or f"event:{event.uid}"


def request_figures(event) -> dict:
    stored = getattr(event, "request_usage", None)
    if isinstance(stored, dict):
        return {"model": stored.get("model") or "",
                **{name: int(stored.get(name) or 0) for name in TOKEN_FIELDS},
                "cost_usd": Decimal(str(stored.get("cost_usd") or 0))}
    return {"model": event.model, **{name: getattr(event, name) for name in TOKEN_FIELDS},
            "cost_usd": event.cost_usd or Decimal(0)}


def fold_usage(events: list) -> list:
    """`events` in timeline order without the model-request reports; each remaining event
    has `folded_usage` (a StepUsage, or None). With no step to fold into, the reports stay."""
    for e in events:
        e.folded_usage = None
    steps = [e for e in events if e.type not in FOLDED_TYPES]
    if not steps:
        return events
    by_request = {e.request_id: e for e in steps if e.request_id}
    target_of: dict[str, object] = {}
    last_in_trace: dict = {}
    last = None
    orphans = []
    for e in events:
        if e.type not in FOLDED_TYPES:
            last_in_trace[e.trace_id] = last = e
            continue
        key = request_key(e)
        target = (by_request.get(e.request_id) or target_of.get(key)
                  or last_in_trace.get(e.trace_id) or last)
        if target is None:
            orphans.append(e)
            continue
        target_of[key] = target
        _fold(target, key, e)
    for e in orphans:  # before every step: they go to the first one
        key = request_key(e)
        _fold(target_of.setdefault(key, steps[0]), key, e)
    return steps


def _fold(target, key: str, report) -> None:
    if target.folded_usage is None:
        target.folded_usage = StepUsage()
    target.folded_usage.add(key, request_figures(report))


def fold_live(events: list, shown: QuerySet, *, redrawn: bool = False) -> list:
    """The timeline rows a live update sends for `events` (new ones, plus those of a tool
    call drawn again, `redrawn`): their steps with the reports folded into them and, when
    reports arrive after their step was shown (Claude Code's come after the turn's `stop`),
    that step again with every report folded into it so far, to replace its row.

    `shown`: the events the page has already. Two more queries, only for a batch that has
    reports or redraws a step that may carry some."""
    passed = {e.pk for e in events}
    earlier: list = []
    if redrawn or any(e.type in FOLDED_TYPES for e in events):
        first = min(events, key=lambda e: (e.ts, e.pk))
        step = (shown.exclude(type__in=FOLDED_TYPES).filter(ts__lte=first.ts)
                .order_by("-ts", "-pk").first())
        since = step.ts if step is not None else first.ts
        earlier = [*([step] if step is not None else []), *with_request_usage(
            shown.filter(type__in=FOLDED_TYPES, ts__gte=since))]
    rows = fold_usage(sorted([*earlier, *events], key=lambda e: (e.ts, e.pk)))
    return [e for e in rows if e.pk in passed or e.folded_usage is not None]
