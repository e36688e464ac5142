"""`python -m bench [--quick] [--only NAME[,NAME]]`: run the benchmarks, print each figure
beside its same-run reference, write `bench/results/latest.json`.

One scratch database (`voight_bench_<pid>`) is created and migrated for the run and dropped
at the end; servers are started on loopback by each benchmark. `--quick` shrinks every data
set so the whole suite proves it still works in a minute or two (CI runs one benchmark of it).

`--only soak [--minutes N]` runs the opt-in soak (bench/soak.py; never in the default run): the
production processes under mixed load for N minutes (default 10, or VOIGHT_SOAK_MINUTES; 20 s
with --quick), on a scratch database `voight_soak_<pid>`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import signal
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import common

# Run order: the write benchmarks first, on small tables; the big seeds last.
BENCHMARKS = [
    "ingest_batch", "fold_scaling", "visibility", "hook_request", "request_cpu", "hook_client",
    "status_recompute", "live", "approvals_hold", "pages", "csv_export",
]
# Opt-in only: the soak is minutes long and wants the machine to itself; pg_restart restarts
# the machine's PostgreSQL.
OPT_IN = ["soak", "pg_restart"]


def _hook_client(quick: bool) -> dict:
    from bench import hook_client

    result = hook_client.run(quick)
    stats = result["stats"]
    bare = stats["bare_python_S"]["median_ms"]
    up = stats["hook_server_up"]["median_ms"]
    down = stats["hook_server_down"]["p95_ms"]
    figures = [
        common.figure("voight hook call (stub server), median", up, "ms", reference=bare,
                      reference_name="python3 -S -c pass, ms", target="≤ 3×",
                      ok=up <= 3 * bare, higher_is_better=False),
        common.figure("voight hook call (server down), p95", down, "ms", target="≤ 150 ms",
                      ok=down <= 150, higher_is_better=False),
    ]
    real = hook_client.run_real_server(quick)
    bare = real["stats"]["bare_python_S"]["median_ms"]
    figures.append(common.figure(
        "voight hook, real server, blocking calls, median", real["blocking_real"]["median_ms"],
        "ms", reference=bare, reference_name="python3 -S -c pass, ms", target="≤ 3×",
        ok=real["within_budget"], higher_is_better=False))
    for name in (*hook_client.BLOCKING, "PostToolUse"):
        figures.append(common.figure(
            f"  {name}, real server / stub, median", real["stats"][f"real:{name}"]["median_ms"],
            "ms", reference=real["stats"][f"stub:{name}"]["median_ms"],
            reference_name="ms against the stub", higher_is_better=False))
    figures.append(common.figure(
        f"  Stop reading a whole {real['history_transcript_bytes'] / 1e6:.1f} MB transcript",
        real["cold_stop"]["median_ms"], "ms", reference=bare,
        reference_name="python3 -S -c pass, ms", higher_is_better=False))
    for label, path in (("ingest", "/v1/ingest"), ("hooks", "/v1/hooks/claude-code")):
        figures.append(common.figure(
            f"  server answer to one PreToolUse, {path}, median",
            real["server_answer"][label]["median_ms"], "ms", higher_is_better=False))
    return {"figures": figures, "details": {**result, "real_server": real}}


def _status_recompute(quick: bool) -> dict:
    try:
        module = importlib.import_module("bench.status_recompute")
    except ModuleNotFoundError as exc:
        if exc.name == "bench.status_recompute":
            raise common.Skip("bench/status_recompute.py is not there yet") from None
        raise
    result = module.run(quick)
    if "figures" in result:
        return result
    return {"figures": [], "details": result}


def _module_runner(name: str):
    def run(quick: bool) -> dict:
        return importlib.import_module(f"bench.{name}").run(quick)
    return run


RUNNERS = {name: _module_runner(name) for name in BENCHMARKS + OPT_IN}
RUNNERS["hook_client"] = _hook_client
RUNNERS["status_recompute"] = _status_recompute


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    header = ("figure", "value", "reference", "ratio", "target", "")
    lines = [header] + [
        (r["figure"], f"{_fmt(r['value'])} {r['unit']}",
         f"{_fmt(r['reference'])} {r['reference_name']}".strip() if r["reference"] else "—",
         _fmt(r["ratio"]) + ("×" if r["ratio"] is not None else ""), r["target"],
         {True: "ok", False: "MISS", None: ""}[r["ok"]])
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _write(path: str, summary: dict) -> None:
    with open(path, "w") as f:
        json.dump(summary, f, indent=2, default=str)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data sets (CI smoke run)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated, of: {', '.join(BENCHMARKS + OPT_IN)}")
    parser.add_argument("--minutes", type=float, default=None,
                        help="soak duration (default: VOIGHT_SOAK_MINUTES, else 10)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the scratch database")
    parser.add_argument("--output", default=str(common.RESULTS / "latest.json"))
    args = parser.parse_args(argv)
    selected = [n.strip() for n in args.only.split(",") if n.strip()] or BENCHMARKS
    unknown = set(selected) - set(BENCHMARKS + OPT_IN)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    common.RESULTS.mkdir(parents=True, exist_ok=True)
    # A terminated run still stops its servers and drops its database (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.minutes is not None:
        os.environ["VOIGHT_SOAK_MINUTES"] = str(args.minutes)
    prefix = "voight_soak" if selected == ["soak"] else "voight_bench"
    name = f"{prefix}_{os.getpid()}"
    summary: dict = {
        "started_at": datetime.now(UTC).isoformat(), "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "database": name, "benchmarks": {}, "figures": [],
    }
    started = time.perf_counter()
    try:
        common.django_setup(common.create_database(name))
        for bench in selected:
            print(f"== {bench}", flush=True)
            t0 = time.perf_counter()
            try:
                result = RUNNERS[bench](args.quick)
                entry = {"status": "ok", **result}
                for row in result.get("figures", []):
                    row["benchmark"] = bench
                summary["figures"] += result.get("figures", [])
                print_table(result.get("figures", []))
            except common.Skip as skip:
                entry = {"status": "skipped", "reason": str(skip)}
                print(f"   skipped: {skip}")
            except Exception as exc:
                entry = {"status": "error", "error": repr(exc),
                         "traceback": traceback.format_exc()}
                print(f"   error: {exc!r}")
                traceback.print_exc()
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            summary["benchmarks"][bench] = entry
            _write(args.output, summary)  # a run cut short keeps what it measured
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            common.drop_database(name)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    _write(args.output, summary)
    print(f"\n== all figures ({summary['seconds']} s; {args.output})")
    print_table(summary["figures"])
    failed = [b for b, e in summary["benchmarks"].items() if e["status"] == "error"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
