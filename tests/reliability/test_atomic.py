"""Atomic: a run that fails mid-load leaves every hub table and ops.sync_state exactly as they were."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assets.commerce import core_catalog, raw_commerce_product_projections
from resources.hub import HubResource
from resources.hub.duckdb import _DuckDBStage
from tests.conftest import Simulator
from tests.reliability.harness import DATASETS, hub_state, reconcile, sync, truth, watermark_behind_data

KILLS = 10
KILL_SEED = 20261127


def crash_on_merge(monkeypatch: pytest.MonkeyPatch, nth: int = 1) -> list[str]:
    """Make every stage merge from the `nth` on write its rows, then raise (a crash inside the transaction).

    Returns the names of the tables merged so far.
    """
    merged: list[str] = []
    original = _DuckDBStage.merge

    def merge(self, batch_id, loaded_at):
        result = original(self, batch_id, loaded_at)
        merged.append(self.spec.name)
        if len(merged) >= nth:
            raise RuntimeError(f"injected crash after merging {self.spec.name}")
        return result

    monkeypatch.setattr(_DuckDBStage, "merge", merge)
    return merged


def test_a_crash_inside_every_load_leaves_the_hub_unchanged(
    sim: Simulator, hub: HubResource, monkeypatch: pytest.MonkeyPatch, matrix
):
    sync(sim, hub)
    sim.admin("POST", "churn", products=10, inventory=10, payments=5, stock_movements=10, seed=1)
    before = hub_state(hub)
    merged = crash_on_merge(monkeypatch)
    result = sync(sim, hub, mode="incremental", raise_on_error=False)
    assert not result.success and merged
    assert hub_state(hub) == before
    matrix.proved("crash inside the load", "atomic", tables=len(before))


def test_a_crash_between_the_stages_of_one_load_keeps_none_of_them(
    sim: Simulator, hub: HubResource, monkeypatch: pytest.MonkeyPatch, matrix
):
    """core_catalog merges products, variants and prices in one load: a crash after prices keeps none."""
    sync(sim, hub, assets=[raw_commerce_product_projections])
    before = hub_state(hub)
    merged = crash_on_merge(monkeypatch, 3)
    assert not sync(sim, hub, assets=[core_catalog], raise_on_error=False).success
    assert {"core.products", "core.product_variants"} <= set(merged)  # really merged, then rolled back
    assert hub_state(hub) == before
    matrix.proved("crash between stages", "atomic", tables=len(before))


KILL_SCRIPT = """
import sys
from resources.hub import HubResource
from tests.conftest import Simulator
from tests.reliability.harness import sync

sync(Simulator(sys.argv[1]), HubResource(url="duckdb:///" + sys.argv[2]), mode=sys.argv[3])
"""


def run_sync_process(sim: Simulator, hub_file: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, sim.url, str(hub_file), mode],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_a_rerun_equals_a_clean_run(sim: Simulator, tmp_path: Path, matrix):
    hub_file = tmp_path / "killed.duckdb"
    started = time.monotonic()  # a first run completes: it also tells how long a run takes here
    assert run_sync_process(sim, hub_file, "full").wait(timeout=300) == 0
    clean_run_s = time.monotonic() - started
    rng = random.Random(KILL_SEED)
    hub = HubResource(url=f"duckdb:///{hub_file}")
    survived = 0
    for kill in range(KILLS):
        process = run_sync_process(sim, hub_file, "full" if kill % 2 == 0 else "incremental")
        time.sleep(rng.uniform(0.2, clean_run_s))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if kill % 3 == 0:  # the world moves between runs, as it does between real crashes
            sim.admin("POST", "churn", products=3, inventory=3, payments=2, stock_movements=5, seed=kill)
        if hub_file.exists():
            watermark_behind_data(hub)
        survived += 1
    assert run_sync_process(sim, hub_file, "full").wait(timeout=300) == 0  # the rerun, after the last kill
    counts = reconcile(hub, truth(sim))
    assert counts.quarantined == 0
    matrix.proved("SIGKILL at random moments", "atomic", kills=survived, records=counts.records)
    matrix.proved("SIGKILL at random moments", "watermark", kills=survived, datasets=len(DATASETS))
