"""Jobs: what runs together."""

from collections.abc import Iterable

import dagster as dg

from assets.aggregation import serving_product_experience
from assets.commerce import (
    COMMERCE_CORE_TABLES,
    core_catalog,
    core_inventory_entries,
    raw_commerce_categories,
    raw_commerce_channels,
    raw_commerce_inventory_entries,
    raw_commerce_product_projections,
)
from assets.inventory import reconcile_inventory, serving_v1_inventory_availability
from assets.orders import ORDERS_CORE_TABLES, raw_commerce_customers, raw_commerce_orders
from assets.payments import PAYMENTS_CORE_TABLES, RAW_PAYMENTS_ASSETS
from assets.sourcing import serving_v1_sourcing_options
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

# The extract applying each kind of change event (by its resource type, as `assets/commerce.py` declares it).
CHANGE_EXTRACTS_BY_TYPE = {
    "product": raw_commerce_product_projections,
    "inventory-entry": raw_commerce_inventory_entries,
}

# Change-data-capture: the two raw extracts in `changes` mode, their core tables and the serving
# models downstream of them, which recompute only the rows of what changed; no full export. The
# whole-table checks (Great Expectations suites, schema drift of the newest raw batch) are left out:
# the scheduled syncs and `serving_job` run them. Each batch still passes the row rules (quarantine)
# and its blocking batch checks (counts_reconcile, bad_rows_within_threshold) in the conform step.
CHANGE_EXTRACTS = tuple(CHANGE_EXTRACTS_BY_TYPE.values())
CHANGED_CORE = dg.AssetSelection.assets(core_catalog, core_inventory_entries)
CHANGED_SERVING = CHANGED_CORE.downstream() & SERVING
BATCH_CHECKS = dg.AssetSelection.checks(
    *(key for assets in (core_catalog, core_inventory_entries) for key in assets.check_keys)
)
COMMERCE_CHANGES = (
    dg.AssetSelection.assets(*CHANGE_EXTRACTS) | CHANGED_CORE | CHANGED_SERVING
).without_checks() | BATCH_CHECKS
SERVING_BY_CHANGES = (
    serving_product_experience,
    reconcile_inventory,
    serving_v1_inventory_availability,
    serving_v1_sourcing_options,
)


CHANGE_JOB_ASSETS = (*CHANGE_EXTRACTS, core_catalog, core_inventory_entries, *SERVING_BY_CHANGES)


def _changed_by(kinds: Iterable[str]) -> set[dg.AssetKey]:
    """The assets that events of `kinds` (resource types) can change: their extracts and what is downstream."""
    extracts = [CHANGE_EXTRACTS_BY_TYPE[kind] for kind in kinds]
    return set(dg.AssetSelection.assets(*extracts).downstream().resolve(CHANGE_JOB_ASSETS))


def _changes_selection(kinds: Iterable[str]) -> dg.AssetSelection:
    """The assets events of `kinds` can change, with the batch checks of their core assets."""
    assets = _changed_by(kinds)
    checks = [
        key for core in (core_catalog, core_inventory_entries) for key in core.check_keys if key.asset_key in assets
    ]
    return dg.AssetSelection.assets(*assets).without_checks() | dg.AssetSelection.checks(*checks)


def commerce_changes_config(upto_batch_id: int | None = None, kinds: Iterable[str] | None = None) -> dict:
    """Run config applying the commerce change events committed up to `upto_batch_id` (default all): of
    every kind (the whole `commerce_changes_job`), or the steps of the job applying only `kinds`."""
    assets = None if kinds is None else _changed_by(kinds)
    extract, serving = {"mode": "changes", "upto_batch_id": upto_batch_id}, {"mode": "changes"}
    steps = [(asset, extract) for asset in CHANGE_EXTRACTS] + [(asset, serving) for asset in SERVING_BY_CHANGES]
    chosen = [(asset, config) for asset, config in steps if assets is None or not asset.keys.isdisjoint(assets)]
    return {"ops": {asset.node_def.name: {"config": config} for asset, config in chosen}}


commerce_changes_job = dg.define_asset_job(
    "commerce_changes_job",
    selection=COMMERCE_CHANGES,
    config=commerce_changes_config(),
    # Its steps are small: starting a process for each would cost more than the work.
    executor_def=dg.in_process_executor,
    description="Apply the commerce change events: re-fetch only the changed products and inventory entries by id, "
    "land deletions as soft deletes, conform them through the row rules and batch checks, and recompute the "
    "serving rows of what changed (the whole-table suites run with the scheduled syncs).",
)


def _single_kind_changes_job(name: str, kind: str, description: str):
    """`commerce_changes_job` for events of one kind alone, without the steps that would find nothing to do.

    A job of its own, not a subset of the whole: a subset run keeps its parent's default config, which
    names the steps left out.
    """
    return dg.define_asset_job(
        name,
        selection=_changes_selection([kind]),
        config=commerce_changes_config(kinds=[kind]),
        executor_def=dg.in_process_executor,
        description=description,
    )


# Product events change neither inventory entries nor the inventory models.
commerce_product_changes_job = _single_kind_changes_job(
    "commerce_product_changes_job",
    "product",
    "commerce_changes_job for product events alone: the product projections, the catalog and the product experience.",
)
commerce_inventory_changes_job = _single_kind_changes_job(
    "commerce_inventory_changes_job",
    "inventory-entry",
    "commerce_changes_job for inventory events alone: the inventory entries, the reconciled "
    "positions, the availability, sourcing and product-experience models.",
)
COMMERCE_CHANGES_JOBS = (commerce_changes_job, commerce_product_changes_job, commerce_inventory_changes_job)


def commerce_changes_job_for(kinds: Iterable[str]):
    """The change job for pending events of `kinds` (resource types): the one of a single kind, else the whole."""
    kinds = set(kinds)
    if kinds == {"product"}:
        return commerce_product_changes_job
    if kinds == {"inventory-entry"}:
        return commerce_inventory_changes_job
    return commerce_changes_job


quarantine_release_job = build_release_job(
    [*COMMERCE_CORE_TABLES, *ORDERS_CORE_TABLES, *PAYMENTS_CORE_TABLES, *WAREHOUSE_CORE_TABLES]
)
