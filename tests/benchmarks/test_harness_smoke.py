"""The benchmark harness at a tiny size, so it cannot rot: every scenario and target is reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    "full_sync", "raw_limit", "incremental", "cdc_latency", "peak_rss", "postgres", "validation", "simulator_serving",
}  # fmt: skip
TARGETS = {
    "full sync vs raw limit",
    "full sync records/s (DuckDB)",
    "incremental 10N / N",
    "peak RSS 10N / N",
    "Postgres upsert rows/s",
    "Postgres upsert vs to_sql",
    "validation share",
    "CDC apply latency, 10 changes",
    "simulator serving vs pipeline",
}


def test_a_tiny_run_reports_every_scenario_and_target(tmp_path: Path):
    output = tmp_path / "latest.json"
    env = dict(os.environ)
    if os.environ.get("HUB_TEST_POSTGRES_URL"):
        env["BENCH_POSTGRES_URL"] = os.environ["HUB_TEST_POSTGRES_URL"]
    command = [sys.executable, "-m", "benchmarks", "--products", "300", "--repeat", "1", "--output", str(output)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Targets" in completed.stdout

    results = json.loads(output.read_text())
    assert set(results["scenarios"]) == SCENARIOS
    assert results["meta"]["products"] == 300 and results["meta"]["scaling_products"] == {"n": 30, "10n": 300}
    full = results["scenarios"]["full_sync"]
    assert full["records"] > 300
    assert set(full["stages"]) == {"extract_and_load", "transform", "validate", "orchestration", "waiting_for_pages"}
    raw = results["scenarios"]["raw_limit"]
    assert raw["records"] == full["records"]  # the loop, in its own process, fetched the sync's pages
    for figures in (full["records_per_s"], full["vs_raw_limit"], full["cpu_seconds"], raw["records_per_s"]):
        assert set(figures) == {"median", "min", "max", "runs"}
    # The CPU floor: pipeline and simulator CPU over every core is no longer than the sync itself took.
    [run] = full["runs"]
    assert 0 < run["cpu_floor_seconds"] <= run["seconds"] * 1.05
    assert run["cpu_floor_vs_raw_limit"] >= run["vs_raw_limit"] * 0.95
    assert "best full sync / raw limit its CPU work allows" in completed.stdout
    assert {"n", "10n", "10n_over_n"} <= set(results["scenarios"]["incremental"])
    assert {"n", "10n", "10n_over_n"} <= set(results["scenarios"]["peak_rss"])
    assert results["scenarios"]["cdc_latency"]["changes"] == 10

    targets = {t["name"]: t for t in results["targets"]}
    assert set(targets) == TARGETS
    for target in targets.values():
        assert set(target) == {"name", "measured", "op", "target", "unit", "met", "note"}
        assert target["met"] in (True, False, None)
        assert (target["met"] is None) == (target["measured"] is None)
        if target["measured"] is None:
            assert target["note"], f"{target['name']} is not measured and says not why"
    if os.environ.get("HUB_TEST_POSTGRES_URL"):
        assert targets["Postgres upsert rows/s"]["measured"] is not None
