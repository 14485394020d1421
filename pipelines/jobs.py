"""Jobs: what runs together."""

import dagster as dg

from assets.commerce import (
    raw_commerce_categories,
    raw_commerce_channels,
    raw_commerce_inventory_entries,
    raw_commerce_product_projections,
)
from assets.orders import raw_commerce_customers, raw_commerce_orders
from assets.payments import RAW_PAYMENTS_ASSETS
from assets.warehouse import (
    raw_warehouse_purchase_orders,
    raw_warehouse_stock_levels,
    raw_warehouse_suppliers,
    raw_warehouse_warehouses,
)

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
