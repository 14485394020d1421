"""The commerce messages sensor and the targeted apply job, against the running simulator."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.commerce import (
    INVENTORY_ENTRIES,
    PRODUCTS,
    RAW_INVENTORY_ENTRIES,
    RAW_PRODUCT_PROJECTIONS,
    commerce_assets,
    raw_commerce_inventory_entries,
    raw_commerce_product_projections,
)
from dagster_project.definitions import defs
from pipelines.change_events import append_change_events, new_event_count
from pipelines.jobs import (
    COMMERCE_CHANGES_JOBS,
    commerce_changes_job,
    commerce_inventory_changes_job,
    commerce_product_changes_job,
)
from pipelines.sensors.commerce_messages import (
    SYNC_KEY,
    apply_run_request,
    commerce_messages_sensor,
    commerce_messages_to_events,
    decode_position,
)
from resources.commerce import CommerceToolsResource
from resources.hub import HubResource, TableSpec
from tests.conftest import Simulator, commerce_resource, every_resource


def tick(instance: dg.DagsterInstance, commerce: CommerceToolsResource, hub: HubResource, cursor: str | None):
    """One sensor evaluation; returns what it asked for and the Dagster cursor it left."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"commerce": commerce, "hub": hub})
    return commerce_messages_sensor(context), context.cursor


def stored_events(hub: HubResource) -> pd.DataFrame:
    return hub.read_frame("SELECT event_id, event_type, resource_id, _batch_id FROM ops.change_events")


def test_ticks_first_empty_ties_and_deletes(simulator: Simulator, hub: HubResource) -> None:
    commerce = commerce_resource(simulator, page_size=4)  # pages of 4 split each churn's tied createdAt
    with dg.instance_for_test() as instance:
        first, cursor = tick(instance, commerce, hub, None)
        assert isinstance(first, dg.SkipReason) and cursor is None

        churned = simulator.admin("POST", "churn", products=3, inventory=12)
        request, cursor = tick(instance, commerce, hub, cursor)
        messages = [m for page in commerce.message_pages(None) for m in page]
        assert len(messages) == 15 and {m["createdAt"] for m in messages} == {churned["lastModifiedAt"]}
        events = stored_events(hub)
        assert sorted(events["event_id"]) == sorted(m["id"] for m in messages)  # no gap at the tie
        assert set(events["resource_id"]) == {*churned["products"], *churned["inventory"]}
        batch = int(events["_batch_id"].iloc[0])
        assert request == apply_run_request(batch) and request.run_key == f"commerce-changes:upto-{batch}"
        last = max((m["createdAt"], m["id"]) for m in messages)
        assert decode_position(cursor) == decode_position(hub.sync_state(SYNC_KEY).cursor) == last

        batches = hub.scalar("SELECT count(*) FROM ops.batches")
        again, cursor = tick(instance, commerce, hub, cursor)
        # Nothing new is stored; the events are still unapplied, so the same run (same run key: Dagster
        # launches it once) is asked for again.
        assert again == request
        assert len(stored_events(hub)) == 15 and hub.scalar("SELECT count(*) FROM ops.batches") == batches

        deleted = simulator.admin("POST", "churn", deleted_products=1, deleted_inventory=2)
        after_delete, cursor = tick(instance, commerce, hub, cursor)
        events = stored_events(hub)
        new = events[events["_batch_id"] > batch]
        assert sorted(new["event_type"]) == ["InventoryEntryDeleted", "InventoryEntryDeleted", "ProductDeleted"]
        assert set(new["resource_id"]) == {*deleted["deleted_products"], *deleted["deleted_inventory"]}
        assert after_delete.run_key == f"commerce-changes:upto-{int(new['_batch_id'].iloc[0])}" != request.run_key


def test_the_same_messages_appended_twice_are_stored_once(simulator: Simulator, hub: HubResource) -> None:
    simulator.admin("POST", "churn", products=2, inventory=5)
    events = commerce_messages_to_events(m for page in commerce_resource(simulator).message_pages(None) for m in page)
    assert new_event_count(append_change_events(hub, "commerce", events, transport="poll")) == 7
    assert new_event_count(append_change_events(hub, "commerce", events, transport="amqp")) == 0
    assert hub.scalar("SELECT count(*) FROM ops.change_events") == 7


def test_an_old_hub_table_gains_the_deleted_at_column(hub: HubResource) -> None:
    before = TableSpec(PRODUCTS.name, PRODUCTS.columns[:-1], PRODUCTS.primary_key, version_column="version")
    with hub.load("old") as load:
        row = {c: [None] for c in before.column_names} | {"product_id": ["p-1"], "version": [1]}
        load.stage(before).append(before.to_arrow(row))
    fresh = HubResource(url=hub.url)  # a new process: nothing cached
    fresh.ensure_table(PRODUCTS)
    frame = fresh.read_frame("SELECT product_id, version, deleted_at FROM core.products")
    assert frame["product_id"].tolist() == ["p-1"] and frame["deleted_at"].isna().all()


def source_state(commerce: CommerceToolsResource, endpoint: str) -> dict[str, int]:
    return {r["id"]: r["version"] for page in commerce.export_pages(endpoint) for r in page}


def hub_state(hub: HubResource, spec: TableSpec, key: str) -> tuple[dict[str, int], set[str]]:
    frame = hub.read_frame(f"SELECT {key}, version, deleted_at FROM {spec.name}")
    live = frame[frame["deleted_at"].isna()]
    return dict(zip(live[key], live["version"].astype(int), strict=True)), set(frame[frame["deleted_at"].notna()][key])


def materialized(result: dg.ExecuteInProcessResult, spec: TableSpec) -> dict:
    key = dg.AssetKey(spec.name.split("."))
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def touched_ids(hub: HubResource, spec: TableSpec, batch_id: int) -> set[str]:
    return set(hub.read_frame(f"SELECT id FROM {spec.name} WHERE _batch_id = ?", [batch_id])["id"])


def test_end_to_end_churn_reaches_the_hub_touching_only_changed_keys(
    simulator: Simulator, each_hub: HubResource, tmp_path: Path
) -> None:
    hub = each_hub
    resources = every_resource(simulator, hub, tmp_path)
    local = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=[commerce_changes_job], resources=resources
    )
    commerce = resources["commerce"]
    with dg.instance_for_test() as instance:
        assert dg.materialize(commerce_assets, resources=resources, instance=instance).success  # the full sync
        skipped, cursor = tick(instance, commerce, hub, None)
        assert isinstance(skipped, dg.SkipReason)

        churn = simulator.admin(
            "POST", "churn", products=50, inventory=200, deleted_products=3, deleted_inventory=5, seed=11
        )
        request, cursor = tick(instance, commerce, hub, cursor)
        assert isinstance(request, dg.RunRequest)
        job = local.resolve_job_def("commerce_changes_job")
        result = job.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)
        assert result.success

        products, gone_products = hub_state(hub, PRODUCTS, "product_id")
        entries, gone_entries = hub_state(hub, INVENTORY_ENTRIES, "inventory_entry_id")
        assert products == source_state(commerce, "product-projections")  # key for key, version for version
        assert entries == source_state(commerce, "inventory")
        assert gone_products == set(churn["deleted_products"]) and gone_entries == set(churn["deleted_inventory"])
        serving = set(hub.read_frame("SELECT product_id FROM serving.v1_product_experience")["product_id"])
        assert serving == set(products)

        for spec, changed, deleted in (
            (RAW_PRODUCT_PROJECTIONS, churn["products"], churn["deleted_products"]),
            (RAW_INVENTORY_ENTRIES, churn["inventory"], churn["deleted_inventory"]),
        ):
            metadata = materialized(result, spec)
            expected = set(changed) | set(deleted)
            assert metadata["keys_touched"] == len(expected) == metadata["rows_changed"]
            assert metadata["keys_deleted"] == len(deleted)
            assert touched_ids(hub, spec, metadata["batch_id"]) == expected  # only the changed keys

        again, cursor = tick(instance, commerce, hub, cursor)
        assert isinstance(again, dg.SkipReason)
        extracts = [raw_commerce_product_projections, raw_commerce_inventory_entries]
        extract_config = {"ops": {a.node_def.name: request.run_config["ops"][a.node_def.name] for a in extracts}}
        rerun = dg.materialize(extracts, resources=resources, instance=instance, run_config=extract_config)
        for spec in (RAW_PRODUCT_PROJECTIONS, RAW_INVENTORY_ENTRIES):  # the same run again applies nothing twice
            assert rerun.success and materialized(rerun, spec)["keys_touched"] == 0


def test_one_kind_of_event_runs_the_job_of_that_kind_alone(
    simulator: Simulator, hub: HubResource, tmp_path: Path
) -> None:
    resources = every_resource(simulator, hub, tmp_path)
    local = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=list(COMMERCE_CHANGES_JOBS), resources=resources
    )
    commerce = resources["commerce"]
    with dg.instance_for_test() as instance:
        assert dg.materialize(commerce_assets, resources=resources, instance=instance).success  # the full sync
        _, cursor = tick(instance, commerce, hub, None)

        products = simulator.admin("POST", "churn", products=4, seed=3)["products"]
        request, cursor = tick(instance, commerce, hub, cursor)
        assert request.job_name == commerce_product_changes_job.name and request.run_key.endswith(":product")
        assert set(request.run_config["ops"]) == {
            "raw__commerce_product_projections",
            "serving__v1_product_experience",
        }  # the config names only the steps of that job
        result = local.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, run_config=request.run_config, tags=request.tags
        )
        assert result.success
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert steps == {"raw__commerce_product_projections", "core_catalog", "serving__v1_product_experience"}
        assert {e.check_name for e in result.get_asset_check_evaluations()} == {
            "counts_reconcile",
            "bad_rows_within_threshold",
        }  # the batch checks, not the whole-table suites
        assert hub_state(hub, PRODUCTS, "product_id")[0] == source_state(commerce, "product-projections")
        assert set(products) <= touched_ids(
            hub, RAW_PRODUCT_PROJECTIONS, materialized(result, RAW_PRODUCT_PROJECTIONS)["batch_id"]
        )
        skipped, cursor = tick(instance, commerce, hub, cursor)
        assert isinstance(skipped, dg.SkipReason)  # the inventory cursor lags, but no inventory event waits

        simulator.admin("POST", "churn", inventory=6, seed=4)
        request, cursor = tick(instance, commerce, hub, cursor)
        assert request.job_name == commerce_inventory_changes_job.name
        result = local.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, run_config=request.run_config, tags=request.tags
        )
        assert result.success and hub_state(hub, INVENTORY_ENTRIES, "inventory_entry_id")[0] == source_state(
            commerce, "inventory"
        )
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert "raw__commerce_product_projections" not in steps and "reconcile_inventory" in steps
        assert isinstance(tick(instance, commerce, hub, cursor)[0], dg.SkipReason)

        simulator.admin("POST", "churn", products=1, inventory=1, seed=5)
        request, cursor = tick(instance, commerce, hub, cursor)
        assert request.job_name == commerce_changes_job.name  # both kinds: the whole job


def test_apply_without_events_touches_nothing(simulator: Simulator, hub: HubResource, tmp_path: Path) -> None:
    config = {"mode": "changes", "upto_batch_id": None}
    result = dg.materialize(
        [raw_commerce_inventory_entries],
        resources=every_resource(simulator, hub, tmp_path),
        run_config={"ops": {raw_commerce_inventory_entries.node_def.name: {"config": config}}},
    )
    assert result.success and materialized(result, RAW_INVENTORY_ENTRIES)["keys_touched"] == 0
    assert hub.scalar("SELECT count(*) FROM raw.commerce_inventory_entries") == 0


def test_events_for_records_gone_or_already_deleted_apply_without_error(
    simulator: Simulator, hub: HubResource, tmp_path: Path
) -> None:
    commerce, resources = commerce_resource(simulator), every_resource(simulator, hub, tmp_path)

    def store_new_messages() -> int:
        messages = [m for page in commerce.message_pages(None) for m in page]
        return append_change_events(hub, "commerce", commerce_messages_to_events(messages), "poll").batch_id

    def apply(upto: int) -> dict:
        config = {"mode": "changes", "upto_batch_id": upto}
        name = raw_commerce_product_projections.node_def.name
        result = dg.materialize(
            [raw_commerce_product_projections], resources=resources, run_config={"ops": {name: {"config": config}}}
        )
        assert result.success
        return materialized(result, RAW_PRODUCT_PROJECTIONS)

    changed = simulator.admin("POST", "churn", products=2)["products"]
    published = store_new_messages()
    simulator.admin("POST", "churn", deleted_products=300)  # every product, the two changed ones too
    deleted = store_new_messages()
    gone = apply(published)  # the changed products no longer exist when their events are applied
    assert (gone["keys_touched"], gone["keys_gone_at_source"]) == (0, 2)
    tombstones = apply(deleted)  # never landed before: the tombstones come from the messages' projections
    assert (tombstones["keys_deleted"], tombstones["keys_touched"]) == (300, 300)
    stored = hub.read_frame("SELECT id, document FROM raw.commerce_product_projections WHERE id = ?", [changed[0]])
    assert '"deletedAt"' in stored["document"].iloc[0]

    [message] = [m for page in commerce.message_pages(None) for m in page if m["type"] == "ProductDeleted"][:1]
    again = append_change_events(hub, "commerce", commerce_messages_to_events([{**message, "id": "a-copy"}]), "poll")
    repeated = apply(again.batch_id)
    assert (repeated["keys_already_deleted"], repeated["keys_touched"]) == (1, 0)
