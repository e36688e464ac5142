"""No import cycles among the project's own modules.

A cycle tends to hide behind an import inside a function ("the tasks module imports this
one"), so every import statement counts, wherever it sits. Read from the source with `ast`,
nothing is imported, so the test runs without a database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sessions", "traces", "ingest", "voight")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(tree: ast.AST, known: set[str], own: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from sessions import alerts` imports the module sessions.alerts.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known and name != own)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {
        name: imported_modules(ast.parse(path.read_text(encoding="utf-8")), set(modules), name)
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def test_cycles_finds_a_cycle_behind_a_function_level_import():
    tree = ast.parse("import b\n\ndef later():\n    from c import thing\n")
    graph = {"a": imported_modules(tree, {"a", "b", "c"}, "a"), "b": set(), "c": {"a"}}
    assert cycles(graph) == [["a", "c"]]


def test_the_project_has_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("module", "must_not_reach"), [
    # Broken in issue 16: alerts queued the webhook task through sessions.tasks.
    ("sessions.alerts", "sessions.tasks"),
    ("sessions.webhooks", "sessions.alerts"),
    # Broken in issue 16: the PostgreSQL CSV path took `cell` from the Python CSV writer.
    ("voight.api.csv_postgres", "voight.api.csv"),
])
def test_the_lower_module_does_not_reach_the_higher(module, must_not_reach):
    graph = import_graph()
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        for target in graph[current] - seen:
            seen.add(target)
            todo.append(target)
    assert must_not_reach not in seen
