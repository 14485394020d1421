"""Warehouse movements sensor: a run whenever the WMS stock-movement feed has moved past the hub's cursor.

The raw movements asset commits the feed cursor with the movements it lands (`ops.sync_state`
row `raw.warehouse_stock_movements`). Each tick reads the feed after that cursor; when there are
new movements it requests `warehouse_movements_job` with the feed cursor it reached as the run key,
so the same feed position is never requested twice; while such a run waits to start, no other is
requested behind it. The run lands the movements from the committed cursor (not from what the
sensor saw), refreshes the stock levels they changed (incremental), and rebuilds the inventory
positions and the availability read model from them.
"""

from itertools import islice

import dagster as dg

from assets.inventory import reconcile_inventory, serving_v1_inventory_availability
from assets.warehouse import (
    RAW_STOCK_MOVEMENTS,
    core_stock_levels,
    core_stock_movements,
    raw_warehouse_stock_levels,
    raw_warehouse_stock_movements,
)
from pipelines.change_events import skip_when_hub_busy, waiting_run
from resources.http import ExternalSystemError
from resources.hub import HubResource
from resources.warehouse import WarehouseResource

#: feed pages a tick reads at most; beyond, the run key is the position reached and the run reads on
MAX_PAGES = 20

warehouse_movements_job = dg.define_asset_job(
    "warehouse_movements_job",
    selection=dg.AssetSelection.assets(
        raw_warehouse_stock_movements,
        core_stock_movements,
        raw_warehouse_stock_levels,
        core_stock_levels,
        reconcile_inventory,
        serving_v1_inventory_availability,
    ),
    config={
        "ops": {
            raw_warehouse_stock_levels.node_def.name: {"config": {"mode": "incremental"}},
            # Only the positions of the SKUs whose stock levels moved, as commerce_changes_job does.
            reconcile_inventory.node_def.name: {"config": {"mode": "changes"}},
            serving_v1_inventory_availability.node_def.name: {"config": {"mode": "changes"}},
        }
    },
    description="New stock movements from the feed, the stock levels they changed, and the positions of those SKUs.",
)


@dg.sensor(
    job=warehouse_movements_job,
    minimum_interval_seconds=60,
    description="A warehouse_movements_job run when the stock-movement feed has moved past the hub's cursor.",
)
def warehouse_movements_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, hub: HubResource):
    return _tick(context, warehouse, hub)


@skip_when_hub_busy
def _tick(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, hub: HubResource):
    waiting = waiting_run(context.instance, warehouse_movements_job.name)
    if waiting is not None:
        return dg.SkipReason(f"run {waiting} has not started yet; it reads the feed to its end when it does")
    state = hub.sync_state(RAW_STOCK_MOVEMENTS.name)
    committed = state.cursor if state else None
    feed = warehouse.movement_feed(committed)
    try:
        new = sum(len(page) for page in islice(feed, MAX_PAGES))
    except ExternalSystemError as exc:
        if exc.code != "invalid_cursor":
            raise
        raise RuntimeError(
            f"the WMS refused the hub's feed cursor ({exc}): delete the ops.sync_state row "
            f"'{RAW_STOCK_MOVEMENTS.name}' to read the feed again from the start"
        ) from None
    if not new or feed.cursor is None:
        return dg.SkipReason("no stock movements beyond the hub's committed feed cursor")
    context.update_cursor(feed.cursor)
    context.log.info(f"{new:,} stock movements beyond the hub's cursor")
    return dg.RunRequest(run_key=feed.cursor, tags={"warehouse/feed_cursor": feed.cursor})
