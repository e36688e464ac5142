"""The benchmark suite still runs: one quick benchmark end to end, numbers in the summary.

Never asserts a timing (CI machines are shared and noisy); only that the suite starts its
own scratch database and server, measures, and writes a JSON summary with numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the benchmarks run against PostgreSQL",
    ),
]


def test_quick_ingest_benchmark_writes_a_summary_with_numbers(tmp_path):
    output = tmp_path / "latest.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "ingest_batch",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(output.read_text())
    assert summary["benchmarks"]["ingest_batch"]["status"] == "ok"
    figures = summary["figures"]
    # Per batch size: the acknowledged rate, the CPU per event it took beside COPY's, the
    # folder's CPU per event meanwhile (no reference) and the end-to-end (folded) rate.
    assert len(figures) == 8
    folder = [f for f in figures if f["figure"].strip().startswith("folder process CPU")]
    assert len(folder) == 2 and all(f["value"] >= 0 for f in folder)
    for figure in figures:
        if figure in folder:
            continue
        for field in ("value", "reference", "ratio"):
            assert isinstance(figure[field], int | float) and math.isfinite(figure[field])
            assert figure[field] > 0
    details = summary["benchmarks"]["ingest_batch"]["details"]
    # Acknowledged once staged; every one of them stored by the folds afterwards.
    assert details["batch_100"]["http"]["results"] == {"accepted": 1000}
    assert details["batch_100"]["copy"]["rows"] == 1000
