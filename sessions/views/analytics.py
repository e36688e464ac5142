"""The analytics page: per developer, repository and branch, tool, MCP server and skill,
with trend lines per day and top-N bars beside the tables' numbers."""

from __future__ import annotations

from django.views.generic import TemplateView

from sessions.analytics import analytics_report, analytics_sessions
from voight.web import charts, lists
from voight.web import format as fmt
from voight.web.scoping import TeamScopedMixin

TOP_N = 10
TABLE_ROWS = 25


def _decorate(row: dict) -> dict:
    """Display strings beside the raw numbers (the API and CSV carry the raw ones)."""
    row["cost"] = fmt.money(row["cost_usd"])
    row["active"] = fmt.duration(row["active_time_s"])
    row["tokens"] = fmt.compact(row["input_tokens"] + row["output_tokens"])
    row["success"] = fmt.percent(row["tool_success_rate"])
    return row


def _trends(days: list[dict]) -> dict:
    labels = [d["day"].strftime("%b %-d") for d in days]
    return {
        "sessions_chart": charts.lines(
            labels, [("sessions", [d["sessions"] for d in days])], value_format=_count),
        "cost_chart": charts.lines(
            labels, [("cost", [float(d["cost_usd"]) for d in days])],
            value_format=lambda v: f"${v:,.2f}" if v >= 1 else f"${v:.2g}"),
        "lines_chart": charts.lines(
            labels, [("added", [d["lines_added"] for d in days]),
                     ("removed", [d["lines_removed"] for d in days])], value_format=_count),
    }


def _count(value: float) -> str:
    return fmt.compact(int(value)) if value == int(value) else f"{value:.1f}"


class AnalyticsView(TeamScopedMixin, TemplateView):
    template_name = "sessions/analytics.html"
    nav = "analytics"

    def get(self, request, *args, **kwargs):
        filterset = lists.session_filterset(request.GET, self.team_ids)
        context = self.get_context_data(**kwargs)
        window = lists.window(request.GET)
        context.update(window=window, windows=lists.WINDOWS[:4])
        if not filterset.is_valid():
            context["errors"] = lists.error_list(filterset)
            return self.render_to_response(context, status=400)
        sessions, since = analytics_sessions(filterset)
        report = analytics_report(sessions, since)
        for name in ("developers", "repositories"):
            report[name] = [_decorate(row) for row in report[name]]
        totals = _decorate(report["totals"])
        developers, repositories = report["developers"], report["repositories"]
        context.update(
            report, totals=totals, **_trends(report["days"]),
            developers=developers[:TABLE_ROWS], developers_more=len(developers) - TABLE_ROWS,
            repositories=repositories[:TABLE_ROWS],
            repositories_more=len(repositories) - TABLE_ROWS,
            developer_bars=charts.top_bars(
                [(r["developer"], float(r["cost_usd"]), r["cost"], f"{r['sessions']} sessions")
                 for r in developers], TOP_N),
            repository_bars=charts.top_bars(
                [(label, r["sessions"], str(r["sessions"]), f"{r['repository']} · {r['cost']}")
                 for label, r in zip(repo_labels(repositories[:TOP_N]), repositories[:TOP_N],
                                     strict=True)],
                TOP_N),
            tool_bars=charts.top_bars(
                [(r["tool"], r["calls"], fmt.compact(r["calls"]),
                  f"{fmt.percent(r['success_rate'])} ok") for r in report["tools"]], TOP_N),
            query=lists.filter_data(request.GET).urlencode(),
        )
        for row in report["tools"] + report["mcp_servers"] + report["skills"]:
            row["success"] = fmt.percent(row["success_rate"])
        return self.render_to_response(context)


def repo_labels(rows: list[dict]) -> list[str]:
    """Short bar labels, "dir @ branch": the directory's last component, or as many trailing
    components as it takes to tell apart two checkouts that share a name (two clones of
    `billing-api` read `alice/billing-api` and `bob/billing-api`, not the same label twice)."""
    parts = [[p for p in (r["repository"] or "").split("/") if p] or ["(no directory)"]
             for r in rows]
    depth = [1] * len(rows)

    def label(n: int) -> str:
        name = "/".join(parts[n][-depth[n]:])
        return f"{name} @ {rows[n]['branch']}" if rows[n]["branch"] else name

    while True:
        seen: dict[str, list[int]] = {}
        for n in range(len(rows)):
            seen.setdefault(label(n), []).append(n)
        grow = [n for same in seen.values() if len(same) > 1 for n in same
                if depth[n] < len(parts[n])]
        if not grow:
            return [label(n) for n in range(len(rows))]
        for n in grow:
            depth[n] += 1
