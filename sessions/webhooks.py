"""Alert webhooks: POST a fired signal as JSON to the rule's URL (SPEC 6).

The Celery task `deliver_webhook` (below) calls `signal_webhook_deliver` with the
signal's id; a failed attempt raises `WebhookError` so Celery retries it with backoff, and the
last attempt, delivered or not, is kept as a decision trace.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from sessions.models import Decision, Signal
from sessions.rule_words import rule_words

USER_AGENT = "Voight-Webhook/1"


class WebhookError(Exception):
    """One delivery attempt failed (network error, timeout or a non-2xx answer)."""


def _budget_payload(signal: Signal) -> dict[str, Any]:
    budget, crossing = signal.budget, getattr(signal, "crossing", None)
    return {
        "id": budget.pk, "name": str(budget), "scope": budget.scope, "target": budget.target,
        "period": budget.period, "limit_usd": budget.limit_usd,
        "pause_at_limit": budget.pause_at_limit,
        "percent": crossing.percent if crossing else None,
        "period_start": crossing.period_start if crossing else None,
    }


def signal_payload(signal: Signal) -> dict[str, Any]:
    """A rule's signal names its rule (`budget` null), a budget's its budget (`rule` null)."""
    rule, session, agent = signal.rule, signal.session, signal.agent
    return {
        "type": "signal.fired",
        "signal": {
            "id": signal.pk, "message": signal.message, "fired_at": signal.fired_at,
            "value": signal.value,
        },
        "rule": {
            "id": rule.pk, "name": rule_words(rule), "kind": rule.kind, "threshold": rule.threshold,
            "window_minutes": rule.window_minutes, "action": rule.action,
        } if rule is not None else None,
        "budget": _budget_payload(signal) if signal.budget_id else None,
        "session": {
            "id": str(session.pk), "session_id": session.external_id, "status": session.status,
            "status_reason": session.status_reason, "started_at": session.started_at,
            "cost_usd": session.cost_usd, "error_count": session.error_count,
        },
        "agent": {"id": agent.slug, "paused": agent.is_paused},
        "team": signal.team.slug,
    }


def _post(url: str, body: bytes, idempotency_key: str) -> int:
    # Delivery is at least once (a worker killed after sending retries): the key lets the
    # receiver drop the second copy.
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "Idempotency-Key": idempotency_key,
    })
    try:
        with urllib.request.urlopen(request, timeout=settings.VOIGHT_WEBHOOK_TIMEOUT) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookError(str(getattr(exc, "reason", exc))[:200]) from exc


def signal_webhook_deliver(signal_id: int, *, attempt: int = 1, last_attempt: bool = True) -> str:
    """Deliver one signal. Raises `WebhookError` on a failed attempt that will be retried;
    records the outcome of the final attempt as a decision."""
    signal = (
        Signal.objects.select_related("rule", "budget", "crossing", "session", "agent", "team")
        .filter(pk=signal_id).first()
    )
    url = signal.source.webhook_url if signal is not None else ""
    if not url:
        return "nothing to deliver"
    host = urlsplit(url).netloc
    body = json.dumps(signal_payload(signal), cls=DjangoJSONEncoder).encode()
    inputs = {"url_host": host, "attempt": attempt, "signal": signal.pk}
    try:
        status = _post(url, body, f"voight-signal-{signal.pk}")
    except WebhookError as exc:
        if not last_attempt:
            raise
        outcome = f"webhook to {host} failed after {attempt} attempt(s): {exc}"
        _record(signal, outcome, {**inputs, "error": str(exc)})
        return outcome
    outcome = f"webhook delivered to {host}: HTTP {status} (attempt {attempt})"
    _record(signal, outcome, {**inputs, "http_status": status})
    return outcome


def _record(signal: Signal, outcome: str, inputs: dict) -> None:
    Decision.objects.create(
        team_id=signal.team_id, agent_id=signal.agent_id, session_id=signal.session_id,
        rule_id=signal.rule_id, signal=signal, kind=Decision.Kind.WEBHOOK, outcome=outcome[:500],
        inputs=inputs,
    )


@shared_task(
    bind=True,
    # The name it had in sessions.tasks, so messages queued before a deploy still find it.
    name="sessions.tasks.deliver_webhook",
    autoretry_for=(WebhookError,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=settings.VOIGHT_WEBHOOK_RETRIES,
    # A hung endpoint cannot hold a worker: the socket timeout fires first, this is the net.
    soft_time_limit=settings.VOIGHT_WEBHOOK_TIMEOUT * 3 + 5,
    time_limit=settings.VOIGHT_WEBHOOK_TIMEOUT * 3 + 10,
)
def deliver_webhook(self, signal_id: int) -> str:
    return signal_webhook_deliver(
        signal_id,
        attempt=self.request.retries + 1,
        last_attempt=self.request.retries >= self.max_retries,
    )
