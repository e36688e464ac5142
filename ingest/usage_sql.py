"""`rollups.merge_usage` on PostgreSQL: a batch's usage facts merged in one statement.

The Python path reads every touched `Usage` row as a model instance, merges each event into
it, prices it and writes the rows back through a staging table. Here the batch's usage
events go as arrays (`unnest`), and one statement locks the rows, merges each request's
events (every token field by max, the first model named, the channels, a reported cost by
max), prices what was not reported and returns the old and new figures for the session
deltas. The price of every model the batch names is computed once in Python
(`ingest.pricing`, the one price table) and sent along; a row whose stored model the batch
does not name is priced in Python afterwards (rare: a request reported again without its
model).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import connection

from ingest import sql
from ingest.pricing import price_for, request_cost
from traces.models import Usage

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_MERGED = (*TOKEN_FIELDS, "cache_write_1h_tokens")
_USAGE = Usage._meta.db_table

_REPORTED = "'reported'"

# `old` locks the rows first (the latest committed version, as `select_for_update` reads
# it): a request can be merged by folds of two sessions at once (a forked transcript's
# copy), and the merge must start from what the other one wrote.
# The price's `raw` is the cost in millionths; Python's `quantize` rounds it half to even,
# `round()` half away from zero, so a tie goes to the even neighbour explicitly.
_MERGE_SQL = f"""
WITH e AS (
    SELECT * FROM unnest(%(key)s::text[], %(ord)s::int[],
        {", ".join(f"%({f})s::bigint[]" for f in _MERGED)},
        %(model)s::text[], %(channel)s::text[], %(cost)s::numeric[])
        AS e(key, ord, {", ".join(_MERGED)}, model, channel, cost_usd)
), prices AS (
    SELECT * FROM unnest(%(price_model)s::text[], %(price_input)s::numeric[],
        %(price_output)s::numeric[], %(price_read)s::numeric[], %(price_write)s::numeric[],
        %(price_write_1h)s::numeric[]) AS p(model, input, output, cache_read, cache_write,
        cache_write_1h)
), g AS (
    SELECT e.key, {", ".join(f"max(e.{f}) AS {f}" for f in _MERGED)},
        (array_agg(e.model ORDER BY e.ord) FILTER (WHERE e.model <> ''))[1] AS model,
        array_agg(DISTINCT e.channel) AS channels, max(e.cost_usd) AS reported_cost
    FROM e GROUP BY e.key
), old AS (
    SELECT u.id, u.session_id, u.request_id, u.model, u.sources, u.cost_usd, u.cost_source,
        {", ".join(f"u.{f}" for f in _MERGED)}
    FROM {_USAGE} u WHERE u.team_id = %(team)s AND u.request_id = ANY(%(key)s::text[])
    ORDER BY u.id FOR UPDATE
), merged AS (
    SELECT o.id, o.session_id, o.cost_usd AS old_cost,
        {", ".join(f"o.{f} AS old_{f}" for f in TOKEN_FIELDS)},
        {", ".join(f"greatest(o.{f}, g.{f}) AS {f}" for f in _MERGED)},
        CASE WHEN o.model <> '' THEN o.model ELSE coalesce(g.model, '') END AS model,
        (SELECT jsonb_agg(c ORDER BY c COLLATE "C") FROM (
            SELECT jsonb_array_elements_text(o.sources) UNION SELECT unnest(g.channels)
        ) AS s(c)) AS sources,
        o.cost_source = {_REPORTED} OR g.reported_cost IS NOT NULL AS reported,
        CASE WHEN g.reported_cost IS NULL THEN o.cost_usd ELSE greatest(
            CASE WHEN o.cost_source = {_REPORTED} THEN o.cost_usd ELSE 0 END, g.reported_cost)
        END AS reported_cost
    FROM old o JOIN g ON g.key = o.request_id
), priced AS (
    SELECT m.*, p.model IS NOT NULL AS in_table, p.input IS NOT NULL AS priceable, (
        p.input * m.input_tokens + p.output * m.output_tokens
        + p.cache_read * m.cache_read_tokens
        + p.cache_write * (greatest(m.cache_write_tokens, 0) - least(
            greatest(m.cache_write_1h_tokens, 0), greatest(m.cache_write_tokens, 0)))
        + p.cache_write_1h * least(
            greatest(m.cache_write_1h_tokens, 0), greatest(m.cache_write_tokens, 0))
    ) AS raw
    FROM merged m LEFT JOIN prices p ON p.model = m.model
)
UPDATE {_USAGE} u SET
    {", ".join(f"{f} = p.{f}" for f in _MERGED)}, model = p.model, sources = p.sources,
    cost_usd = CASE WHEN p.reported THEN p.reported_cost
        WHEN NOT p.in_table THEN u.cost_usd
        WHEN NOT p.priceable THEN 0
        ELSE CASE WHEN p.raw - floor(p.raw) = 0.5 THEN floor(p.raw) + mod(floor(p.raw), 2)
                  ELSE round(p.raw) END / 1000000 END,
    cost_source = CASE WHEN p.reported THEN {_REPORTED}
        WHEN NOT p.in_table THEN u.cost_source
        WHEN NOT p.priceable THEN '' ELSE 'computed' END
FROM priced p WHERE u.id = p.id
RETURNING u.id, u.session_id, p.old_cost, {", ".join(f"p.old_{f}" for f in TOKEN_FIELDS)},
    {", ".join(f"u.{f}" for f in _MERGED)}, u.cost_usd,
    NOT p.reported AND NOT p.in_table AS unpriced, u.model
"""


def usage_merge_in_sql(team_id: int, by_key: dict) -> dict:
    """Merge {request key: [pending events]} into their (already inserted) `Usage` rows;
    returns {session pk: {field: delta}} as `rollups.merge_usage` does."""
    columns: dict[str, list] = {name: [] for name in (
        "key", "ord", *_MERGED, "model", "channel", "cost")}
    for key, items in by_key.items():
        for position, item in enumerate(items):
            event = item.canonical
            columns["key"].append(key)
            columns["ord"].append(position)
            for field in _MERGED:
                columns[field].append(getattr(event, field))
            columns["model"].append(event.model or "")
            columns["channel"].append(channel_of(event))
            columns["cost"].append(event.cost_usd)
    models = sorted({*columns["model"], ""})
    prices = [price_for(model) for model in models]
    columns.update({
        "team": team_id, "price_model": models,
        "price_input": [p and p.input for p in prices],
        "price_output": [p and p.output for p in prices],
        "price_read": [p and p.cache_read for p in prices],
        "price_write": [p and p.cache_write_5m for p in prices],
        "price_write_1h": [p and p.cache_write_1h for p in prices],
    })
    with connection.cursor() as cursor:
        cursor.execute(_MERGE_SQL, columns)
        merged = cursor.fetchall()
    deltas: dict = defaultdict(lambda: defaultdict(Decimal))
    unpriced = []
    for row in merged:
        pk, session_pk, old_cost, *old_tokens = row[:7]
        merged_figures, cost, needs_price, model = row[7:12], row[12], row[13], row[14]
        if needs_price:
            computed = _price(model, *merged_figures)
            cost = computed if computed is not None else Decimal(0)
            unpriced.append(Usage(pk=pk, cost_usd=cost,
                                  cost_source="computed" if computed is not None else ""))
        for field, old, value in zip((*TOKEN_FIELDS, "cost_usd"), (*old_tokens, old_cost),
                                     (*merged_figures[:4], cost), strict=True):
            if value != old:
                deltas[session_pk][field] += value - old
    sql.update_rows(unpriced, ["cost_usd", "cost_source"])
    return deltas


def _price(model: str, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
           cache_write_1h_tokens) -> Decimal | None:
    return request_cost(
        model, input_tokens=input_tokens, output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens, cache_write_tokens=cache_write_tokens,
        cache_write_1h_tokens=cache_write_1h_tokens,
    )


def channel_of(event) -> str:
    """The channel a usage fact came by, as `Usage.sources` names it."""
    return "otel" if event.source == "otel" else ("sdk" if event.source == "sdk" else "hook")
