"""Replaying the event history from a snapshot gives the live inventory state."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.commerce import commerce_assets, core_inventory_entries, raw_commerce_inventory_entries
from pipelines.replay import differences, replay_inventory_job
from pipelines.sensors.commerce_messages import commerce_messages_sensor
from resources.hub import HubResource
from tests.conftest import Simulator, every_resource


def sync_changes(instance: dg.DagsterInstance, resources: dict, cursor: str | None) -> str | None:
    """One sensor tick, then the inventory part of the run it requested."""
    sensor_resources = {"commerce": resources["commerce"], "hub": resources["hub"]}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=sensor_resources)
    request = commerce_messages_sensor(context)
    assert isinstance(request, dg.RunRequest)
    config = request.run_config["ops"][raw_commerce_inventory_entries.node_def.name]
    result = dg.materialize(
        [raw_commerce_inventory_entries, core_inventory_entries],
        resources=resources,
        instance=instance,
        run_config={"ops": {raw_commerce_inventory_entries.node_def.name: config}},
    )
    assert result.success
    return context.cursor


def replay(resources: dict, instance: dg.DagsterInstance, take_snapshot: bool) -> dict:
    result = replay_inventory_job.execute_in_process(
        run_config={"ops": {"replay_inventory_op": {"config": {"take_snapshot": take_snapshot}}}},
        resources={"hub": resources["hub"]},
        instance=instance,
    )
    assert result.success
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def test_replay_from_a_snapshot_equals_the_live_state(simulator: Simulator, hub: HubResource, tmp_path: Path) -> None:
    resources = every_resource(simulator, hub, tmp_path)
    with dg.instance_for_test() as instance:
        assert dg.materialize(commerce_assets, resources=resources, instance=instance).success
        first = replay(resources, instance, take_snapshot=True)
        assert first["events_replayed"] == 0 and first["entries_differing_from_core"] == 0

        cursor = None
        for churn in (
            {"inventory": 150, "deleted_inventory": 4, "seed": 1},
            {"inventory": 150, "deleted_inventory": 3, "seed": 2},  # overlaps the first: a second quantity set
        ):
            simulator.admin("POST", "churn", **churn)
            cursor = sync_changes(instance, resources, cursor)

        before = replay(resources, instance, take_snapshot=False)
        assert before["events_replayed"] == 307 and before["entries_differing_from_core"] == 0
        assert differences(hub).empty
        sequences = hub.scalar("SELECT max(sequence_number) FROM ops.change_events")
        assert sequences >= 2

        replayed = hub.read_frame("SELECT * FROM ops.inventory_replay").set_index("inventory_entry_id")
        source = {r["id"]: r for page in resources["commerce"].export_pages("inventory") for r in page}
        live = replayed[~replayed["deleted"]]
        assert set(live.index) == set(source)
        assert all(
            (row.quantity_on_stock, row.available_quantity)
            == (source[i]["quantityOnStock"], source[i]["availableQuantity"])
            for i, row in live.iterrows()
        )
        assert replayed["deleted"].sum() == 7

        # the history is what makes the replay right: a stale snapshot without the events is not
        hub.backend.scalar("DELETE FROM ops.change_events")
        stale = replay(resources, instance, take_snapshot=False)
        assert stale["entries_differing_from_core"] > 0


def test_replay_without_a_snapshot_fails_naming_the_setting(hub: HubResource) -> None:
    result = replay_inventory_job.execute_in_process(resources={"hub": hub}, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "take_snapshot" in failure.step_failure_data.error.message


def test_an_event_already_in_the_snapshot_is_not_applied_again() -> None:
    from pipelines.replay import replay as rebuild

    snapshot = pd.DataFrame(
        [{"inventory_entry_id": "e1", "version": 3, "sku": "S", "supply_channel_id": "c", "quantity_on_stock": 9,
          "available_quantity": 8, "deleted": False}]
    )  # fmt: skip
    message = '{"newQuantityOnStock": 1, "newAvailableQuantity": 1}'
    events = pd.DataFrame(
        [
            {"resource_id": "e1", "event_type": "InventoryEntryQuantitySet", "sequence_number": 1,
             "resource_version": 3, "payload": message},
            {"resource_id": "e1", "event_type": "InventoryEntryDeleted", "sequence_number": 2,
             "resource_version": 4, "payload": '{"sku": "S"}'},
        ]
    )  # fmt: skip
    [row] = rebuild(snapshot, events).to_dict("records")
    assert (row["quantity_on_stock"], row["deleted"], row["version"]) == (9, True, 4)
