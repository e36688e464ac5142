"""Reading subagent trees: the nodes of a session or trace, nested, and the main agent's share.

The rows are written by ingest.subagents; these are the selectors every page, API view and
export reads them through (scoped by the session or trace the caller already scoped).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from django.db.models import OuterRef, QuerySet, Subquery

from sessions.models import Session
from traces.models import Subagent, Trace


@dataclasses.dataclass
class MainShare:
    """The main agent's part of a session: the session's rollups minus its subagents'."""

    # Node field → the session field it is a part of.
    FIELDS = {"tool_count": "tool_call_count", "error_count": "error_count",
              "input_tokens": "input_tokens", "output_tokens": "output_tokens",
              "cache_read_tokens": "cache_read_tokens", "cache_write_tokens": "cache_write_tokens",
              "cost_usd": "cost_usd"}

    tool_count: int = 0
    error_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


def subagent_type_of_event():
    """An events query's annotation: the type of the subagent each event happened in (the
    node's, which transcript usage and OTel records do not carry themselves); NULL for the
    main agent. One index probe per row that has a subagent."""
    return Subquery(Subagent.objects.filter(
        session_id=OuterRef("session_id"), agent_id=OuterRef("subagent_id"),
    ).values("agent_type")[:1])


def main_share(session: Session, nodes: list[Subagent]) -> MainShare:
    return MainShare(**{
        field: getattr(session, session_field) - sum(
            (getattr(n, field) for n in nodes), Decimal(0) if field == "cost_usd" else 0)
        for field, session_field in MainShare.FIELDS.items()
    })


@dataclasses.dataclass
class Node:
    subagent: Subagent
    children: list[Node]
    depth: int


def nest(nodes: list[Subagent]) -> list[Node]:
    """The nodes as a forest (a node whose parent is not among them is a root), depth-first
    in start order; a cycle in bad data cannot loop (each node is placed once)."""
    by_id = {n.agent_id: n for n in nodes}
    children: dict[str, list[Subagent]] = {}
    roots = []
    for node in nodes:
        parent = node.parent_agent_id
        if parent and parent in by_id and parent != node.agent_id:
            children.setdefault(parent, []).append(node)
        else:
            roots.append(node)
    placed: set[str] = set()

    def build(node: Subagent, depth: int) -> Node | None:
        if node.agent_id in placed:
            return None
        placed.add(node.agent_id)
        kids = [b for c in children.get(node.agent_id, []) if (b := build(c, depth + 1))]
        return Node(node, kids, depth)

    forest = [b for r in roots if (b := build(r, 0))]
    # Nodes only reachable through a cycle become roots.
    forest += [b for n in nodes if n.agent_id not in placed and (b := build(n, 0))]
    return forest


def flatten(forest: list[Node]) -> list[Node]:
    out: list[Node] = []
    for node in forest:
        out.append(node)
        out += flatten(node.children)
    return out


def with_depth(forest: list[Node]) -> list[Subagent]:
    """The forest depth-first, each row carrying its `depth` (what the API and pages show)."""
    rows = []
    for node in flatten(forest):
        node.subagent.depth = node.depth
        rows.append(node.subagent)
    return rows


def _in_start_order(nodes: QuerySet) -> list[Subagent]:
    return list(nodes.select_related("trace").order_by("started_at", "id"))


def subagent_tree(session: Session) -> tuple[MainShare, list[Subagent]]:
    """(the main agent's share, the nodes depth-first): what the session detail shows, in
    one query whether or not the session has subagents (the pages' counts stay pinned)."""
    nodes = _in_start_order(Subagent.objects.filter(session=session))
    return main_share(session, nodes), with_depth(nest(nodes))


def trace_subagent_nodes(trace: Trace) -> list[Subagent]:
    return with_depth(nest(_in_start_order(Subagent.objects.filter(trace=trace))))
