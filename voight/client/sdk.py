"""The Python SDK: report an autonomous bot's sessions and events to Voight.

    from voight.client import sdk as voight

    # library mode: you own the session id
    voight.log("tool_use", metadata={"sessionId": "run-42"}, tool_name="search")

    # managed sessions: opened on the server, heartbeats, metrics, closed even on exceptions
    with voight.start_session(goal="triage the inbox", agent_id="mailbot") as s:
        s.log("tool_use", tool_name="search", duration_ms=120)
        s.set_metrics({"goal_completed": True, "score": 0.9, "emails": 14})

Configured by arguments or VOIGHT_URL / VOIGHT_KEY / VOIGHT_AGENT (and VOIGHT_HEARTBEAT).

Reporting must not slow the bot or crash it: events are buffered and sent by a background
thread in batches (100 events or every 2 s), with retries and backoff; a batch that cannot be
delivered goes back to the buffer for the next round; everything left is flushed at exit. A
4xx other than 408/429 is final: a batch refused as too large (413) is sent again in halves,
and what the server still refuses is dropped with a warning, never retried.
Server trouble is logged on the `voight` logger, never raised. Only misuse raises
(ValueError for bad metrics or an event without a session).
"""

import atexit
import logging
import math
import threading
import time
import traceback
import weakref

from voight.client import config, ids, transport

logger = logging.getLogger("voight")

BATCH_SIZE = 100
FLUSH_INTERVAL = 2.0
MAX_BATCH = 1000  # the server's per-request limit
MAX_BUFFER = 10_000  # beyond this (a long outage) the oldest events are dropped
RETRY_DELAYS = (0.5, 1.0, 2.0)
TIMEOUT = 5.0
EXIT_TIMEOUT = 2.0
MAX_CUSTOM_METRICS = 10
MAX_METRIC_NAME = 64  # the server's limits, checked here so a typo fails at the call site
MAX_METRIC_TEXT = 1000
# Top-level fields of a canonical event (SPEC §4.2); anything else a caller passes goes to payload.
CANONICAL_FIELDS = frozenset({
    "id", "type", "timestamp", "agent_id", "session_id", "trace_id", "tool_name", "tool_use_id",
    "outcome", "duration_ms", "model", "request_id", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "cost_usd", "metadata",
})


class Client:
    """Where to send, and as whom."""

    def __init__(self, url: str | None = None, key: str | None = None, agent_id: str | None = None):
        self.url = (url or config.url()).rstrip("/")
        self.key = key if key is not None else config.key()
        self.agent_id = agent_id or config.agent()

    def call(self, method: str, path: str, body, timeout: float = TIMEOUT) -> transport.Response:
        return transport.post_json(self.url + path, self.key, body, timeout, method=method)

    def call_retrying(self, method: str, path: str, body, delays=None, timeout=TIMEOUT):
        """The first non-retryable answer, or None when every attempt failed transiently."""
        for delay in (0.0, *(RETRY_DELAYS if delays is None else delays)):
            time.sleep(delay)
            try:
                answer = self.call(method, path, body, timeout)
            except transport.TransportError as exc:
                logger.debug("voight: %s %s failed: %s", method, path, exc)
                continue
            if answer.status in (408, 429) or answer.status >= 500:
                logger.debug("voight: %s %s answered %s", method, path, answer.status)
                continue
            return answer
        return None


class _Batcher:
    """Buffers events and sends them in batches from a background thread."""

    def __init__(self, client: Client):
        self.client = client
        self._buf: list[dict] = []
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()  # one sender at a time keeps batches in order
        self._oldest = 0.0
        self._thread: threading.Thread | None = None
        self._stopped = False
        _live.add(self)

    def add(self, event: dict) -> None:
        with self._cond:
            if not self._buf:
                self._oldest = time.monotonic()
            self._buf.append(event)
            if len(self._buf) > MAX_BUFFER:
                del self._buf[: len(self._buf) - MAX_BUFFER]
                logger.warning("voight: buffer full, dropped the oldest events")
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name="voight-batcher", daemon=True
                )
                self._thread.start()
            if len(self._buf) >= BATCH_SIZE:
                self._cond.notify()

    def flush(self, delays=None, timeout: float = TIMEOUT) -> bool:
        """Send everything buffered now. False if some events are still waiting."""
        with self._send_lock:
            while True:
                with self._cond:
                    batch = self._buf[:MAX_BATCH]
                    del self._buf[:MAX_BATCH]
                if not batch:
                    return True
                unsent = self._send(batch, delays, timeout)
                if unsent:
                    with self._cond:
                        self._buf[:0] = unsent
                        self._oldest = time.monotonic()  # wait a full interval before retrying
                    logger.warning("voight: %s could not take %d events; will retry",
                                   self.client.url, len(unsent))
                    return False

    def _send(self, batch: list[dict], delays, timeout: float) -> list[dict]:
        """Deliver `batch`; returns the events left to send (the server was unreachable)."""
        answer = self.client.call_retrying("POST", "/v1/ingest", batch, delays, timeout)
        if answer is None:
            return batch
        if answer.status == 413 and len(batch) > 1:
            # Too large as a whole (large payloads); its halves may not be.
            half = len(batch) // 2
            left = self._send(batch[:half], delays, timeout)
            return left + batch[half:] if left else self._send(batch[half:], delays, timeout)
        if not answer.ok:  # a client error: resending the same events cannot help
            logger.warning("voight: server refused %d events (%s): %s", len(batch),
                           answer.status, answer.body[:300].decode(errors="replace"))
        return []

    def stop(self, timeout: float = TIMEOUT) -> bool:
        """Stop the background thread and flush what is left."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self.flush(delays=(0.5,), timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._due():
                    self._cond.wait(self._wait_time())
                if self._stopped:
                    return
            self.flush()

    def _due(self) -> bool:
        return len(self._buf) >= BATCH_SIZE or (
            bool(self._buf) and time.monotonic() - self._oldest >= FLUSH_INTERVAL
        )

    def _wait_time(self) -> float:
        if not self._buf:
            return FLUSH_INTERVAL
        return max(0.01, FLUSH_INTERVAL - (time.monotonic() - self._oldest))


_live: "weakref.WeakSet[_Batcher]" = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for batcher in list(_live):
        batcher.flush(delays=(0.2,), timeout=EXIT_TIMEOUT)


def make_event(type_: str, fields: dict, session_id: str | None, agent_id: str | None) -> dict:
    if not isinstance(type_, str) or not type_:
        raise ValueError("an event needs a type (a non-empty string)")
    event = {"id": ids.uuid4(), "type": type_, "timestamp": ids.rfc3339(time.time())}
    if agent_id:
        event["agent_id"] = agent_id
    if session_id:
        event["session_id"] = session_id
    payload = dict(fields.pop("payload", None) or {})
    for name, value in fields.items():
        if name in CANONICAL_FIELDS:
            event[name] = value
        else:
            payload[name] = value
    if payload:
        event["payload"] = payload
    return event


def validate_metrics(metrics) -> dict:
    """Metrics as the server stores them, or ValueError naming the problem.

    `goal_completed` is a bool, `score` a number in [0, 1], and at most ten other keys with
    string names (<= 64 characters) and JSON scalar values (str of <= 1000 characters, int,
    float, bool, None).
    """
    if not isinstance(metrics, dict):
        raise ValueError("metrics must be a dict")
    out = {}
    custom = 0
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric names must be non-empty strings, got {name!r}")
        if name == "goal_completed":
            if not isinstance(value, bool):
                raise ValueError("goal_completed must be True or False")
        elif name == "score":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError("score must be a number between 0 and 1")
            if not 0 <= value <= 1:  # also rejects NaN
                raise ValueError(f"score must be between 0 and 1, got {value}")
            value = float(value)
        else:
            custom += 1
            if len(name) > MAX_METRIC_NAME:
                raise ValueError(f"metric names are at most {MAX_METRIC_NAME} characters")
            if isinstance(value, str) and len(value) > MAX_METRIC_TEXT:
                raise ValueError(f"metric {name!r} is longer than {MAX_METRIC_TEXT} characters")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"metric {name!r} must be a str, number, bool or None")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metric {name!r} must be finite")
        out[name] = value
    if custom > MAX_CUSTOM_METRICS:
        raise ValueError(f"at most {MAX_CUSTOM_METRICS} custom metrics, got {custom}")
    return out


class Session:
    """One run of an agent, opened on the server. Use as a context manager (or start()/end())."""

    def __init__(
        self,
        goal: str | None = None,
        agent_id: str | None = None,
        parent_session_id: str | None = None,
        experiment_id: str | None = None,
        variant: str | None = None,
        metadata: dict | None = None,
        *,
        url: str | None = None,
        key: str | None = None,
        heartbeat_interval: float | None = None,
    ):
        self.client = Client(url, key, agent_id)
        self.goal = goal
        self.parent_session_id = parent_session_id
        self.experiment_id = experiment_id
        self.variant = variant
        self.metadata = dict(metadata or {})
        # Our own external id, sent with the create call: if the server is unreachable at
        # start, events still carry a stable id and a later create call uses the same one.
        self.session_id: str = ids.uuid4()
        self.id: str | None = None  # the server's UUID, known once created
        self.heartbeat_interval = heartbeat_interval or config.heartbeat_interval()
        self._metrics: dict = {}
        self._metrics_unsent = False
        self._batcher = _Batcher(self.client)
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ended = False

    def __enter__(self) -> "Session":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.log(
                "error",
                outcome="failed",
                error_type=exc_type.__name__,
                message=str(exc),
                traceback="".join(traceback.format_exception(exc_type, exc, tb)),
            )
        self.end("exception" if exc_type is not None else "completed")
        return False  # re-raise

    def start(self) -> "Session":
        self._create()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="voight-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        return self

    def log(self, type: str, **fields) -> str:
        """Buffer one event of this session; returns its id."""
        event = make_event(type, fields, self.session_id, self.client.agent_id)
        self._batcher.add(event)
        return event["id"]

    def flush(self, timeout: float = TIMEOUT) -> bool:
        return self._batcher.flush(timeout=timeout)

    def set_metrics(self, metrics: dict) -> None:
        """Validate and store outcome metrics (merged with earlier calls)."""
        merged = validate_metrics({**self._metrics, **validate_metrics(metrics)})
        self._metrics = merged
        self._metrics_unsent = not self._patch({"metrics": merged})

    def heartbeat(self) -> bool:
        if not self._ensure_created():
            return False
        try:
            answer = self.client.call("POST", f"/v1/sessions/{self.id}/heartbeat", {})
        except transport.TransportError as exc:
            logger.debug("voight: heartbeat failed: %s", exc)
            return False
        return answer.ok

    def end(self, reason: str = "completed") -> None:
        """Stop heartbeats, flush events, close the session on the server. Idempotent."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self._stop.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(TIMEOUT)
        self._batcher.stop()
        body: dict = {"end": True, "end_reason": reason}
        if self._metrics_unsent:
            body["metrics"] = self._metrics
        if self._patch(body, delays=None):
            self._metrics_unsent = False

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            self.heartbeat()

    def _create(self) -> bool:
        body = {
            "session_id": self.session_id,
            "goal": self.goal,
            "agent_id": self.client.agent_id,
            "parent_session_id": self.parent_session_id,
            "experiment_id": self.experiment_id,
            "variant": self.variant,
            "metadata": self.metadata,
        }
        answer = self.client.call_retrying("POST", "/v1/sessions", body, delays=(0.5,))
        data = answer.json() if answer is not None and answer.ok else None
        if not isinstance(data, dict) or not data.get("id"):
            status = answer.status if answer is not None else "no answer"
            logger.warning("voight: could not open the session on %s (%s); events are kept "
                           "under session_id %s", self.client.url, status, self.session_id)
            return False
        self.id = str(data["id"])
        self.session_id = str(data.get("session_id") or self.session_id)
        return True

    def _ensure_created(self) -> bool:
        return self.id is not None or self._create()

    def _patch(self, body: dict, delays=(0.5,)) -> bool:
        if not self._ensure_created():
            return False
        answer = self.client.call_retrying("PATCH", f"/v1/sessions/{self.id}", body, delays)
        if answer is None or not answer.ok:
            logger.warning("voight: PATCH session %s failed (%s)", self.id,
                           answer.status if answer is not None else "no answer")
            return False
        return True


def start_session(
    goal: str | None = None,
    agent_id: str | None = None,
    parent_session_id: str | None = None,
    experiment_id: str | None = None,
    variant: str | None = None,
    metadata: dict | None = None,
    **options,
) -> Session:
    """A Session to use as `with voight.start_session(...) as s:`.

    `options`: url, key, heartbeat_interval (seconds).
    """
    return Session(goal, agent_id, parent_session_id, experiment_id, variant, metadata, **options)


_default: _Batcher | None = None
_default_lock = threading.Lock()


def configure(url: str | None = None, key: str | None = None, agent_id: str | None = None) -> None:
    """Set where library-mode `log()` sends (default: the VOIGHT_* environment)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.flush()
        _default = _Batcher(Client(url, key, agent_id))


def log(event: str, metadata: dict | None = None, **fields) -> str:
    """Library mode: one event for the session you name in `metadata["sessionId"]`.

    Fields of the canonical event (tool_name, outcome, duration_ms, model, tokens, ...) go
    top-level, anything else into the payload. Returns the event id.
    """
    global _default
    metadata = dict(metadata or {})
    session_id = fields.pop("session_id", None) or metadata.get("sessionId")
    if not session_id:
        raise ValueError('library mode needs metadata={"sessionId": ...}')
    with _default_lock:
        if _default is None:
            _default = _Batcher(Client())
        batcher = _default
    trace_id = fields.pop("trace_id", None) or metadata.get("traceId")
    built = make_event(event, {**fields, "metadata": metadata}, session_id, batcher.client.agent_id)
    if trace_id:
        built["trace_id"] = trace_id
    batcher.add(built)
    return built["id"]


def flush(timeout: float = TIMEOUT) -> bool:
    """Send library-mode events buffered so far; False if some could not be delivered."""
    with _default_lock:
        batcher = _default
    return batcher.flush(timeout=timeout) if batcher is not None else True
