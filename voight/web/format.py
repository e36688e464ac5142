"""Plain-text formatting for the pages (no template library needed): durations, money,
token counts. Times are not formatted here: the browser shows them in the viewer's zone."""

from __future__ import annotations

from decimal import Decimal


def duration(seconds: float | None) -> str:
    """`850 ms`, `42s`, `2m18s`, `1h04m`, `3d 2h`; empty for unknown."""
    if seconds is None:
        return ""
    seconds = max(float(seconds), 0.0)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{int(seconds)}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def duration_ms(ms: int | None) -> str:
    return "" if ms is None else duration(ms / 1000)


def money(value) -> str:
    """`$1.51`, `$0.0042` for small amounts, `$0` for nothing."""
    if value is None:
        return "$0"
    value = Decimal(value)
    if value == 0:
        return "$0"
    if abs(value) < Decimal("0.01"):
        return f"${value:.4f}"
    return f"${value:,.2f}"


def compact(n: int | None) -> str:
    """`950`, `12.3k`, `1.4M`."""
    if not n:
        return "0"
    n = int(n)
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            text = f"{n / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(n)


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "–"
    return f"{fraction * 100:.0f}%" if fraction >= 0.1 or fraction == 0 else f"{fraction * 100:.1f}%"


def first_line(text: str, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def snippet(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
