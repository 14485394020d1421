"""The watermark never leads the data: after a crash it is no later than the newest committed record,
and an incremental run after the crash misses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.hub import HubResource
from tests.conftest import Simulator
from tests.reliability.harness import DATASETS, faults, fired, reconcile, sync, truth, watermark_behind_data
from tests.reliability.test_atomic import crash_on_merge


def test_after_a_crash_the_watermark_stays_and_the_next_run_misses_nothing(
    sim: Simulator, hub: HubResource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, matrix
):
    sync(sim, hub)
    committed = {d.raw.name: hub.sync_state(d.raw.name) for d in DATASETS}
    sim.admin("POST", "churn", products=10, inventory=10, payments=5, stock_movements=10, seed=11)
    with monkeypatch.context() as patch:
        crash_on_merge(patch)
        assert not sync(sim, hub, mode="incremental", raise_on_error=False).success
    assert {d.raw.name: hub.sync_state(d.raw.name) for d in DATASETS} == committed
    watermark_behind_data(hub)
    sync(sim, hub, mode="incremental")
    watermark_behind_data(hub)
    counts = reconcile(hub, truth(sim))
    matrix.proved("crash inside the load", "watermark", records=counts.records)


def test_records_modified_during_the_export_are_caught_by_the_next_incremental_run(
    sim: Simulator, hub: HubResource, tmp_path: Path, matrix
):
    """The world changes between the pages of the export (versions bump behind it)."""
    faults(sim, {"kind": "mutate", "every": 2, "records": 3, "seed": 5})
    sync(sim, hub)
    assert fired(sim) >= 3
    watermark_behind_data(hub)
    sim.admin("DELETE", "faults")
    sync(sim, hub, mode="incremental")
    counts = reconcile(hub, truth(sim))
    assert counts.quarantined == 0
    matrix.proved("records modified mid-export", "watermark", records=counts.records)
    matrix.proved("records modified mid-export", "complete", records=counts.records)
