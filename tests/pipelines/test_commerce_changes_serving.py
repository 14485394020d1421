"""commerce_changes_job recomputes only the serving rows of what changed, and they equal a whole rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.aggregation import PRODUCT_EXPERIENCE
from assets.analytics import analytics_assets
from assets.commerce import commerce_assets
from assets.inventory import INVENTORY_CONFLICTS, INVENTORY_POSITIONS, V1_INVENTORY_AVAILABILITY
from assets.sourcing import V1_SOURCING_OPTIONS
from assets.warehouse import warehouse_assets
from dagster_project.definitions import defs
from pipelines.jobs import CHANGED_SERVING, COMMERCE_CHANGES_JOBS, commerce_changes_job, commerce_product_changes_job
from pipelines.sensors.commerce_messages import commerce_messages_sensor
from resources.hub import HubResource, TableSpec
from simulators.feeds import write_supplier_feed
from simulators.world import World
from tests.conftest import DEFAULT_PRODUCTS, DEFAULT_SEED, Simulator, every_resource

SERVING_TABLES = (
    PRODUCT_EXPERIENCE,
    INVENTORY_POSITIONS,
    INVENTORY_CONFLICTS,
    V1_INVENTORY_AVAILABILITY,
    V1_SOURCING_OPTIONS,
)
# Stamps of the moment a row was computed: a rebuild a moment later has other ones.
MOMENT_COLUMNS = {"detected_at", "computed_at", "horizon_at"}
rebuild_job = dg.define_asset_job("serving_rebuild", selection=CHANGED_SERVING.without_checks())


def snapshot(hub: HubResource, spec: TableSpec) -> pd.DataFrame:
    """The table's rows (declared columns, computation stamps left out) in key order."""
    columns = [c for c in spec.column_names if c not in MOMENT_COLUMNS]
    frame = hub.read_frame(f"SELECT {', '.join(columns)} FROM {spec.name}")
    return frame.sort_values(list(spec.primary_key)).reset_index(drop=True)


def batch_ids(hub: HubResource, spec: TableSpec) -> pd.Series:
    key = list(spec.primary_key)
    frame = hub.read_frame(f"SELECT {', '.join(key)}, _batch_id FROM {spec.name}")
    return frame.set_index(key)["_batch_id"]


def scope(result: dg.ExecuteInProcessResult, spec: TableSpec) -> dict:
    """The `rebuilt*`, `keys_recomputed` and `ranks_moved` metadata of `spec`'s materialization."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey(spec.name.split(".")):
            return {k: v.value for k, v in materialization.metadata.items() if k != "keys_sample"}
    raise AssertionError(f"{spec.name} was not materialized")


def tick(instance: dg.DagsterInstance, resources: dict, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return commerce_messages_sensor(context), context.cursor


@pytest.mark.slow
def test_changes_recompute_only_their_rows_and_equal_a_whole_rebuild(
    simulator: Simulator, each_hub: HubResource, tmp_path: Path
) -> None:
    hub = each_hub
    landing = tmp_path / "landing"
    write_supplier_feed(landing, "2026-11-26", World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS), bad_rows=0)
    resources = every_resource(simulator, hub, landing)
    local = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[*COMMERCE_CHANGES_JOBS, rebuild_job],
        resources=resources,
    )
    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    sensor_resources = {"commerce": resources["commerce"], "hub": hub}
    with dg.instance_for_test() as instance:
        assert dg.materialize([*commerce_assets, *warehouse_assets], resources=resources, instance=instance).success
        assert dg.materialize(analytics_assets, resources=resources, partition_key=day, instance=instance).success
        rebuild = local.resolve_job_def(rebuild_job.name)
        assert rebuild.execute_in_process(instance=instance).success  # what full_sync_job leaves
        _, cursor = tick(instance, sensor_resources, None)
        products = len(snapshot(hub, PRODUCT_EXPERIENCE))

        churn = simulator.admin(
            "POST", "churn", products=6, inventory=15, deleted_products=2, deleted_inventory=3, seed=5
        )
        request, cursor = tick(instance, sensor_resources, cursor)
        assert isinstance(request, dg.RunRequest)
        before = {spec.name: batch_ids(hub, spec) for spec in SERVING_TABLES}
        apply = local.resolve_job_def(commerce_changes_job.name)
        result = apply.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)
        assert result.success
        assert not result.get_asset_check_evaluations() or all(
            e.check_name in ("counts_reconcile", "bad_rows_within_threshold")
            for e in result.get_asset_check_evaluations()
        )  # the whole-table suites are left to the scheduled syncs

        experience = scope(result, PRODUCT_EXPERIENCE)
        assert experience["rebuilt"] == "changed keys"
        assert 0 < experience["keys_recomputed"] < products
        assert experience["ranks_moved"] > 0  # two products left the ranking: the ones below moved up
        for spec in (INVENTORY_POSITIONS, V1_INVENTORY_AVAILABILITY, V1_SOURCING_OPTIONS):
            assert scope(result, spec)["rebuilt"] == "changed keys", spec.name
        served = snapshot(hub, PRODUCT_EXPERIENCE)
        assert not set(churn["deleted_products"]) & set(served["product_id"])
        assert sorted(served["bestseller_rank"]) == list(range(1, len(served) + 1))
        rewritten = (batch_ids(hub, PRODUCT_EXPERIENCE) == experience["batch_id"]).sum()
        assert rewritten <= experience["keys_recomputed"] + experience["ranks_moved"]
        for spec in (INVENTORY_POSITIONS, V1_INVENTORY_AVAILABILITY, V1_SOURCING_OPTIONS):  # most rows stayed
            now = batch_ids(hub, spec)
            kept = now.index.intersection(before[spec.name].index)
            assert (now[kept] == before[spec.name][kept]).mean() > 0.5, spec.name

        incremental = {spec.name: snapshot(hub, spec) for spec in SERVING_TABLES}
        assert rebuild.execute_in_process(instance=instance).success  # from scratch, over the same core
        for spec in SERVING_TABLES:
            pd.testing.assert_frame_equal(incremental[spec.name], snapshot(hub, spec), obj=spec.name)

        simulator.admin("POST", "churn", products=4, inventory=8, seed=6)  # names, prices, stock: no rank moves
        request, cursor = tick(instance, sensor_resources, cursor)
        result = apply.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)
        experience = scope(result, PRODUCT_EXPERIENCE)
        assert experience["rebuilt"] == "changed keys" and experience["ranks_moved"] == 0
        assert (batch_ids(hub, PRODUCT_EXPERIENCE) == experience["batch_id"]).sum() == experience["keys_recomputed"]
        incremental = {spec.name: snapshot(hub, spec) for spec in SERVING_TABLES}
        assert rebuild.execute_in_process(instance=instance).success
        for spec in SERVING_TABLES:
            pd.testing.assert_frame_equal(incremental[spec.name], snapshot(hub, spec), obj=spec.name)

        simulator.admin("POST", "churn", products=3, seed=7)  # product events alone: the product job
        product_request, cursor = tick(instance, sensor_resources, cursor)
        assert product_request.job_name == commerce_product_changes_job.name
        product_run = local.resolve_job_def(product_request.job_name).execute_in_process(
            instance=instance, run_config=product_request.run_config, tags=product_request.tags
        )
        assert scope(product_run, PRODUCT_EXPERIENCE)["rebuilt"] == "changed keys"
        incremental = {spec.name: snapshot(hub, spec) for spec in SERVING_TABLES}
        assert rebuild.execute_in_process(instance=instance).success
        for spec in SERVING_TABLES:  # the models it left out had nothing to recompute
            pd.testing.assert_frame_equal(incremental[spec.name], snapshot(hub, spec), obj=spec.name)

        idle = apply.execute_in_process(instance=instance, run_config=request.run_config)
        assert idle.success  # nothing changed since the rebuild: nothing is recomputed
        for spec in (PRODUCT_EXPERIENCE, INVENTORY_POSITIONS, V1_INVENTORY_AVAILABILITY, V1_SOURCING_OPTIONS):
            assert scope(idle, spec)["keys_recomputed"] == 0, spec.name

        later = (datetime.now(UTC).date() - timedelta(days=2)).isoformat()
        assert dg.materialize(analytics_assets, resources=resources, partition_key=later, instance=instance).success
        after_metrics = apply.execute_in_process(instance=instance, run_config=request.run_config)
        assert scope(after_metrics, PRODUCT_EXPERIENCE)["rebuilt_because"] == "core.product_daily_metrics changed"
