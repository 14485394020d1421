"""Jobs: what runs together."""

import dagster as dg

from assets.commerce import (
    COMMERCE_CORE_TABLES,
    core_catalog,
    core_inventory_entries,
    raw_commerce_categories,
    raw_commerce_channels,
    raw_commerce_inventory_entries,
    raw_commerce_product_projections,
)
from assets.orders import ORDERS_CORE_TABLES, raw_commerce_customers, raw_commerce_orders
from assets.payments import PAYMENTS_CORE_TABLES, RAW_PAYMENTS_ASSETS
from assets.warehouse import (
    WAREHOUSE_CORE_TABLES,
    raw_warehouse_purchase_orders,
    raw_warehouse_stock_levels,
    raw_warehouse_suppliers,
    raw_warehouse_warehouses,
)
from quality.release import build_release_job

# Extracts that can read only what changed since their committed watermark (`mode: incremental`).
# The warehouse movements feed always reads from its committed cursor.
INCREMENTAL_EXTRACTS = (
    raw_commerce_product_projections,
    raw_commerce_inventory_entries,
    raw_commerce_channels,
    raw_commerce_categories,
    raw_commerce_orders,
    raw_commerce_customers,
    *RAW_PAYMENTS_ASSETS,
    raw_warehouse_warehouses,
    raw_warehouse_stock_levels,
    raw_warehouse_suppliers,
    raw_warehouse_purchase_orders,
)

BATCH_SOURCES = dg.AssetSelection.groups("commerce", "payments", "warehouse")
SERVING = dg.AssetSelection.groups("serving")

full_sync_job = dg.define_asset_job(
    "full_sync_job",
    selection=BATCH_SOURCES | SERVING,
    description="Commerce, payments and warehouse in full, then the serving read models; every check on the way.",
)

incremental_sync_job = dg.define_asset_job(
    "incremental_sync_job",
    selection=BATCH_SOURCES | SERVING,
    config={"ops": {asset.node_def.name: {"config": {"mode": "incremental"}} for asset in INCREMENTAL_EXTRACTS}},
    description="Only what changed since each committed watermark (with a lookback), then conform and check.",
)

analytics_daily_job = dg.define_asset_job(
    "analytics_daily_job",
    selection=dg.AssetSelection.groups("analytics"),
    description="One day of product analytics per partition.",
)

serving_job = dg.define_asset_job(
    "serving_job",
    selection=SERVING,
    description="Rebuild the serving read models (and reconciliations) from what core holds now.",
)

# Change-data-capture: the two raw extracts in `changes` mode, their core tables and the serving
# models downstream of them; no full export.
CHANGE_EXTRACTS = (raw_commerce_product_projections, raw_commerce_inventory_entries)
CHANGED_CORE = dg.AssetSelection.assets(core_catalog, core_inventory_entries)
COMMERCE_CHANGES = dg.AssetSelection.assets(*CHANGE_EXTRACTS) | CHANGED_CORE | (CHANGED_CORE.downstream() & SERVING)


def commerce_changes_config(upto_batch_id: int | None = None) -> dict:
    """Run config applying the commerce change events committed up to `upto_batch_id` (default all)."""
    config = {"mode": "changes", "upto_batch_id": upto_batch_id}
    return {"ops": {asset.node_def.name: {"config": config} for asset in CHANGE_EXTRACTS}}


commerce_changes_job = dg.define_asset_job(
    "commerce_changes_job",
    selection=COMMERCE_CHANGES,
    config=commerce_changes_config(),
    description="Apply the commerce change events: re-fetch only the changed products and inventory entries by id, "
    "land deletions as soft deletes, conform, check and rebuild the serving models that read them.",
)

quarantine_release_job = build_release_job(
    [*COMMERCE_CORE_TABLES, *ORDERS_CORE_TABLES, *PAYMENTS_CORE_TABLES, *WAREHOUSE_CORE_TABLES]
)
