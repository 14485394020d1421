"""The warehouse movements sensor: a run per new feed position, and after it the hub matches the WMS."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from assets.inventory import inventory_assets
from assets.warehouse import STOCK_LEVELS, warehouse_assets
from pipelines.sensors.warehouse_movements import warehouse_movements_job, warehouse_movements_sensor
from resources.hub import HubResource
from tests.conftest import Simulator, every_resource


def tick(instance: dg.DagsterInstance, resources: dict) -> dg.RunRequest | dg.SkipReason:
    return warehouse_movements_sensor(dg.build_sensor_context(instance=instance, resources=resources))


def execute(request: dg.RunRequest, instance: dg.DagsterInstance, resources: dict) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=[*warehouse_assets, *inventory_assets], jobs=[warehouse_movements_job], resources=resources
    )
    job = defs.resolve_job_def(warehouse_movements_job.name)
    return job.execute_in_process(instance=instance, tags=request.tags)


def assert_hub_matches_wms(hub: HubResource, simulator: Simulator, resources: dict) -> None:
    assert hub.scalar("SELECT count(*) FROM core.stock_movements") == simulator.stats()["warehouse"]["last_sequence"]
    levels = {r["id"]: (r["on_hand"], r["allocated"]) for p in resources["warehouse"].pages("stock-levels") for r in p}
    frame = hub.read_frame("SELECT stock_level_id, on_hand, allocated FROM core.stock_levels")
    assert {r.stock_level_id: (r.on_hand, r.allocated) for r in frame.itertuples()} == levels
    positions = hub.read_frame(
        "SELECT sku, location_id, warehouse_on_hand FROM core.inventory_positions WHERE warehouse_on_hand IS NOT NULL"
    )
    on_hand = {
        (r["sku"], r["warehouse_id"]): r["on_hand"] for p in resources["warehouse"].pages("stock-levels") for r in p
    }
    assert {(r.sku, r.location_id): r.warehouse_on_hand for r in positions.itertuples()} == on_hand


def test_first_tick_quiet_tick_and_churn(simulator: Simulator, hub: HubResource, tmp_path: Path):
    resources = every_resource(simulator, hub, tmp_path)
    with dg.instance_for_test() as instance:
        first = tick(instance, resources)  # an empty hub: the whole feed is new
        assert isinstance(first, dg.RunRequest)
        assert execute(first, instance, resources).success
        assert_hub_matches_wms(hub, simulator, resources)
        assert isinstance(tick(instance, resources), dg.SkipReason)

        simulator.admin("POST", "churn", stock_movements=15, seed=5)
        request = tick(instance, resources)
        assert isinstance(request, dg.RunRequest) and request.run_key != first.run_key
        assert tick(instance, resources).run_key == request.run_key  # the same feed position, asked again

        result = execute(request, instance, resources)
        assert result.success
        landed = {
            e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
        assert landed["raw/warehouse_stock_movements"]["rows_changed"].value == 15
        assert landed["core/stock_movements"]["rows_changed"].value == 15
        assert {"core/stock_levels", "core/inventory_positions", "serving/v1_inventory_availability"} <= set(landed)
        assert_hub_matches_wms(hub, simulator, resources)
        assert isinstance(tick(instance, resources), dg.SkipReason)


def test_a_hub_locked_by_a_running_step_skips_the_tick(simulator: Simulator, hub: HubResource, tmp_path: Path):
    hub.ensure_table(STOCK_LEVELS)  # the hub file exists
    hold = "import duckdb, sys, time; held = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, hub.url.removeprefix("duckdb:///")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with dg.instance_for_test() as instance:
            skipped = tick(instance, every_resource(simulator, hub, tmp_path))
        assert isinstance(skipped, dg.SkipReason) and "the next tick reads again" in skipped.skip_message
    finally:
        holder.kill()
        holder.wait()
