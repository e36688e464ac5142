"""Server-rendered SVG charts: geometry computed here, drawn by templates/web/partials/.

No chart library and no JS: the overview is a few dozen rectangles, a few hundred bytes
each, and every label goes through template escaping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PALETTE = ("#4f6bed", "#2aa198", "#e0913a", "#b55fc0", "#d9534f", "#5b9c4a", "#8a6d3b",
           "#5bc0de", "#7f8c8d")
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 28


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    color: str
    title: str


@dataclass
class Tick:
    pos: float
    label: str


@dataclass
class Line:
    points: str  # the SVG polyline's "x,y x,y ..."
    color: str
    name: str
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, hover title


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    rects: list[Rect] = field(default_factory=list)
    xticks: list[Tick] = field(default_factory=list)
    yticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    empty: bool = True
    left: int = LEFT
    bottom_y: float = HEIGHT - BOTTOM
    right_x: float = WIDTH - RIGHT
    xlabel_y: float = HEIGHT - BOTTOM + 17
    ylabel_x: float = LEFT - 6


def nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    base = 10 ** exponent
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * base:
            return step * base
    return 10 * base


def stacked_bars(buckets: list, labels: list[str], series: list[tuple[str, dict]],
                 value_format=str, title_format=None, max_labels: int = 8) -> Chart:
    """Bars per bucket (a day or week), stacked by series (an agent).

    `labels` are the x labels of the buckets; `series` is [(name, {bucket: value})].
    """
    chart = Chart()
    totals = [sum(float(values.get(b, 0) or 0) for _, values in series) for b in buckets]
    if not buckets or not any(totals):
        return chart
    chart.empty = False
    top = nice_max(max(totals))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(buckets)
    bar_w = max(min(slot * 0.72, 48), 1.5)
    title_format = title_format or value_format
    for index, bucket in enumerate(buckets):
        x = LEFT + index * slot + (slot - bar_w) / 2
        y = HEIGHT - BOTTOM
        for number, (name, values) in enumerate(series):
            value = float(values.get(bucket, 0) or 0)
            if value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            chart.rects.append(Rect(round(x, 1), round(y, 1), round(bar_w, 1),
                                    round(max(h, 0.5), 1), PALETTE[number % len(PALETTE)],
                                    f"{labels[index]} · {name}: {title_format(values[bucket])}"))
    every = max(1, math.ceil(len(buckets) / max_labels))
    chart.xticks = [Tick(round(LEFT + i * slot + slot / 2, 1), labels[i])
                    for i in range(0, len(buckets), every)]
    chart.yticks = [Tick(round(HEIGHT - BOTTOM - plot_h * k / 4, 1), value_format(top * k / 4))
                    for k in range(5)]
    chart.legend = [(name, PALETTE[n % len(PALETTE)]) for n, (name, _) in enumerate(series)]
    return chart


def bars(labels: list[str], values: list[float], value_format=str, color=PALETTE[0]) -> Chart:
    """One series of vertical bars (the latency histogram)."""
    chart = stacked_bars(list(range(len(labels))), labels, [("calls", dict(enumerate(values)))],
                         value_format, max_labels=12)
    for rect in chart.rects:
        rect.color = color
    chart.legend = []
    return chart


def lines(labels: list[str], series: list[tuple[str, list[float]]], value_format=str,
          max_labels: int = 8, dots: bool = True) -> Chart:
    """Trend lines: one value per bucket (a day) per series, on one shared y axis."""
    chart = Chart()
    values = [float(v or 0) for _, points in series for v in points]
    if not labels or not any(values):
        return chart
    chart.empty = False
    top = nice_max(max(values))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(labels)
    for number, (name, points) in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        coords = [(round(LEFT + i * slot + slot / 2, 1),
                   round(HEIGHT - BOTTOM - float(v or 0) / top * plot_h, 1))
                  for i, v in enumerate(points)]
        chart.lines.append(Line(
            " ".join(f"{x},{y}" for x, y in coords), color, name,
            [(x, y, f"{labels[i]} · {name}: {value_format(points[i] or 0)}")
             for i, (x, y) in enumerate(coords)] if dots else []))
    every = max(1, math.ceil(len(labels) / max_labels))
    chart.xticks = [Tick(round(LEFT + i * slot + slot / 2, 1), labels[i])
                    for i in range(0, len(labels), every)]
    chart.yticks = [Tick(round(HEIGHT - BOTTOM - plot_h * k / 4, 1), value_format(top * k / 4))
                    for k in range(5)]
    chart.legend = [(name, PALETTE[n % len(PALETTE)]) for n, (name, _) in enumerate(series)]
    return chart


@dataclass
class Bar:
    label: str
    value: float
    display: str  # the number printed beside the bar
    pct: float  # the bar's length, % of the longest
    detail: str = ""


def top_bars(rows: list[tuple[str, float, str, str]], limit: int = 10) -> list[Bar]:
    """Horizontal top-N bars: (label, value, display, detail) rows, largest first, each
    with its number beside it (an HTML partial, so long labels wrap on a phone)."""
    ranked = sorted(rows, key=lambda r: -r[1])[:limit]
    top = max((r[1] for r in ranked), default=0)
    return [Bar(label, value, display, round(value / top * 100, 1) if top > 0 else 0, detail)
            for label, value, display, detail in ranked]
