"""Idempotent: the same batch, or the same sensor range, applied twice changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from pipelines.change_events import CHANGE_EVENTS, ChangeEvent, append_change_events, new_event_count
from resources.hub import HubResource
from tests.conftest import Simulator
from tests.reliability.harness import DATASETS, checksum, data_state, rows, sync


def test_the_same_sync_twice_changes_no_data(sim: Simulator, hub: HubResource, matrix):
    sync(sim, hub)
    first = data_state(hub)
    watermarks = {d.raw.name: hub.sync_state(d.raw.name) for d in DATASETS}
    sync(sim, hub)
    assert data_state(hub) == first
    assert {d.raw.name: hub.sync_state(d.raw.name).watermark for d in DATASETS} == {
        name: state.watermark for name, state in watermarks.items()
    }
    matrix.proved("same full sync twice", "idempotent", tables=len(first))


def test_the_same_raw_batches_conformed_again_change_nothing(sim: Simulator, hub: HubResource, matrix):
    """Forget how far conform got, so it conforms every raw batch a second time: core stays as it was."""
    sync(sim, hub)
    first = content(hub)
    for dataset in DATASETS:
        with hub.load(f"conform:{dataset.raw.name}") as load:
            load.advance(cursor="0")
    sync(sim, hub, mode="incremental")
    assert content(hub) == first
    matrix.proved("same raw batch conformed twice", "idempotent", tables=len(first))


def content(hub: HubResource) -> dict[str, str]:
    """Checksums of the business columns of every data table (child tables replaced whole by a conform
    carry the batch that last wrote them, so `_batch_id` and `_loaded_at` are left out here)."""
    return {name: checksum(rows(hub, name, business_only=True)) for name in data_state(hub)}


def test_the_same_sensor_range_twice_stores_each_event_once(hub: HubResource, matrix):
    events = [
        ChangeEvent(
            f"evt-{i}", "ProductPublished", "product", f"p-{i}", datetime(2026, 1, 1, 0, i, tzinfo=UTC), {"n": i}
        )
        for i in range(20)
    ]
    first = append_change_events(hub, "commerce", events, "poll", cursor="20")
    before = (checksum(rows(hub, CHANGE_EVENTS.name)), hub.sync_state("events:commerce").cursor)
    again = append_change_events(hub, "commerce", events, "poll", cursor="20")
    assert new_event_count(first) == 20 and new_event_count(again) == 0
    assert (checksum(rows(hub, CHANGE_EVENTS.name)), hub.sync_state("events:commerce").cursor) == before
    matrix.proved("same sensor range twice", "idempotent", records=len(events))
