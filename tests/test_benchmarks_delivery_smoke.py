"""Smoke runs of the delivery and inbox benchmarks on tiny inputs (figures printed, not timed).

The scripts check their own correctness (every inbox got exactly one verified POST; every
accepted POST was stored) and exit non-zero otherwise; these tests run them end to end and
check that every figure the README quotes is printed and sane.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(args: list[str], timeout: float) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.timeout(60)
def test_bench_delivery_prints_its_figures(tmp_path: Path) -> None:
    out = _run([str(BENCH / "bench_delivery.py"), "--scale", "12,40", "--inboxes", "8",
                "--delay", "0.01", "--runs", "2", "--json", str(tmp_path / "d.json")], 50)
    rows = json.loads((tmp_path / "d.json").read_text())["rows"]
    assert [r["followers"] for r in rows] == [12, 12, 40, 40]
    for row in rows:
        # 12 followers over min(8, 12) inboxes, 40 over 8: one Create, one POST per inbox.
        assert row["activities"] == 1
        assert row["deliveries"] == row["sent"] == row["received"] == row["verified"] == 8
        assert row["failed"] == row["retrying"] == 0
        assert 0 < row["sign_median_ms"] <= row["sign_p99_ms"]
        assert row["seconds"] > 0.01  # at least one answer delay
        assert row["peak_rss_kib"] > 0 and row["cpu_seconds"] > 0
    lines = [x for x in out.splitlines() if x.startswith("followers")]
    assert len(lines) == 4
    assert all(re.search(r"req/s .* signing median [\d.]+ ms .* peak [\d.]+ MiB", x)
               for x in lines)
    medians = [x for x in out.splitlines() if x.startswith("median of 2: followers")]
    assert len(medians) == 2 and "ms/request" in medians[0]
    assert "load average" in out.splitlines()[0]


@pytest.mark.timeout(60)
def test_bench_delivery_refuses_unbounded_arguments() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "bench_delivery.py"), "--inboxes",
                           "70000"], capture_output=True, text=True, timeout=50)
    assert proc.returncode == 2 and "--inboxes" in proc.stderr


@pytest.mark.timeout(90)
def test_bench_inbox_prints_rates_and_latencies(tmp_path: Path) -> None:
    out = _run([str(BENCH / "bench_inbox.py"), "--rates", "20", "--concurrency", "2",
                "--seconds", "1", "--runs", "1", "--senders", "5", "--budget-rate", "100",
                "--warmup", "0.5",
                "--json", str(tmp_path / "i.json")], 80)
    data = json.loads((tmp_path / "i.json").read_text())
    modes = {(r["mode"], r["level"]) for r in data["rows"]}
    assert modes == {("open", 20.0), ("closed", 2.0)}
    for row in data["rows"]:
        # Every signed Like was verified with the cached key and accepted (no 401, no 429).
        assert set(row["statuses"]) == {"202"} and row["errors"] == 0
        assert row["accepted"] > 0 and row["p50_ms"] <= row["p99_ms"]
        assert row["service_cpu_ms"] > 0
    assert data["warmup"] == 50
    assert data["stored"] == sum(r["accepted"] for r in data["rows"]) + data["warmup"]
    assert re.search(r"median of 1: rate +20/s +[\d.]+ accepted POSTs/s +p50", out)
    assert re.search(r"median of 1: concurrency +2 .* p99 +[\d.]+ ", out)
    assert "stored " in out and "inbox activities" in out
