"""Inventory reconciliation: commerce inventory entries and WMS stock levels unified per (SKU, location).

Both systems describe stock per SKU and location (the commerce supply channel id is the warehouse id).
The `inventory` section of the rules file says which system wins for each field (`warehouse`,
`commerce`, or `newest` timestamp) and how many units of disagreement are tolerated; every disagreement
beyond the tolerance lands in `quality.inventory_conflicts` with both values, both timestamps and the
resolution taken. The services read `serving.v1_inventory_availability`.
"""

from datetime import UTC, datetime
from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, Field

from assets.commerce import INVENTORY_ENTRIES
from assets.landing import asset_key, materialization
from assets.warehouse import STOCK_LEVELS
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource

GROUP = "serving"
Source = Literal["warehouse", "commerce", "newest"]
FIELDS = ("on_hand", "available")

INVENTORY_POSITIONS = TableSpec(
    "core.inventory_positions",
    (
        ("sku", "text"),
        ("location_id", "text"),
        ("on_hand", "bigint"),
        ("allocated", "bigint"),
        ("available_quantity", "bigint"),
        ("restockable_in_days", "int"),
        ("on_hand_source", "text"),
        ("available_source", "text"),
        ("commerce_on_hand", "bigint"),
        ("warehouse_on_hand", "bigint"),
        ("commerce_available", "bigint"),
        ("warehouse_available", "bigint"),
        ("commerce_updated_at", "timestamp"),
        ("warehouse_updated_at", "timestamp"),
        ("conflict_count", "int"),
        ("last_synced_at", "timestamp"),
    ),
    ("sku", "location_id"),
    merge="replace",
    description=(
        "One stock position per SKU and location, reconciled from commerce inventory entries and WMS stock "
        "levels by the `inventory` rules; both sources' values are kept beside the resolved ones."
    ),
    column_descriptions={
        "location_id": "The commerce supply channel id, which is also the WMS warehouse id.",
        "available_quantity": "The resolved available quantity, never negative and never above on_hand.",
        "on_hand_source": "Which system the resolved on_hand came from: warehouse or commerce.",
        "available_source": "Which system the resolved available quantity came from: warehouse or commerce.",
        "conflict_count": "Fields the systems disagree on beyond the tolerance (see quality.inventory_conflicts).",
        "last_synced_at": "The newer of the two systems' last update of this position.",
    },
)
INVENTORY_CONFLICTS = TableSpec(
    "quality.inventory_conflicts",
    (
        ("sku", "text"),
        ("location_id", "text"),
        ("field", "text"),
        ("commerce_value", "bigint"),
        ("warehouse_value", "bigint"),
        ("difference", "bigint"),
        ("tolerance_units", "bigint"),
        ("commerce_updated_at", "timestamp"),
        ("warehouse_updated_at", "timestamp"),
        ("rule", "text"),
        ("resolved_from", "text"),
        ("resolved_value", "bigint"),
        ("detected_at", "timestamp"),
    ),
    ("sku", "location_id", "field"),
    merge="replace",
    description=(
        "The current disagreements between commerce and the WMS beyond the tolerance, one row per SKU, "
        "location and field, with both values, both timestamps and the resolution taken."
    ),
    column_descriptions={
        "difference": "commerce_value - warehouse_value.",
        "rule": "The configured rule for the field: warehouse, commerce or newest.",
        "resolved_from": "The system whose value was taken: warehouse or commerce.",
    },
)
V1_INVENTORY_AVAILABILITY = TableSpec(
    "serving.v1_inventory_availability",
    (
        ("sku", "text"),
        ("location_id", "text"),
        ("available_quantity", "bigint"),
        ("is_on_stock", "bool"),
        ("restockable_in_days", "int"),
        ("last_synced_at", "timestamp"),
    ),
    ("sku", "location_id"),
    merge="replace",
    description="What can be sold per SKU and location, from the reconciled inventory positions.",
)

INVENTORY_TABLES = (INVENTORY_POSITIONS, INVENTORY_CONFLICTS, V1_INVENTORY_AVAILABILITY)


class InventoryRules(BaseModel):
    """The `inventory` section of the rules file."""

    tolerance_units: int = Field(ge=0, description="Disagreements of at most this many units are not conflicts.")
    on_hand: Source = Field(description="Which system wins for on_hand.")
    available: Source = Field(description="Which system wins for the available quantity.")


def read_table(hub: HubResource, spec: TableSpec, sql: str, params: list | None = None) -> pd.DataFrame:
    """`sql` over `spec`'s table, which is created empty when it was never loaded."""
    hub.ensure_table(spec)
    return hub.read_frame(sql, params)


def to_arrow(spec: TableSpec, frame: pd.DataFrame) -> pa.Table:
    """The frame's declared columns as an Arrow batch of `spec` (NaN and NaT become nulls)."""
    return pa.Table.from_pandas(frame[spec.column_names], schema=spec.arrow_schema, preserve_index=False)


def _newest_per_key(frame: pd.DataFrame, keys: list[str], stamp: str) -> pd.DataFrame:
    return frame.sort_values([*keys, stamp], na_position="first").drop_duplicates(keys, keep="last")


def reconcile(
    entries: pd.DataFrame, levels: pd.DataFrame, rules: InventoryRules, detected_at: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(positions, conflicts) from commerce `entries` and WMS `levels`.

    entries: sku, location_id, quantity_on_stock, available_quantity, restockable_in_days, last_modified_at.
    levels: sku, location_id, on_hand, allocated, available, updated_at.
    A position known to one system only takes that system's values. Where both know it, each field follows
    its rule (`newest` prefers the warehouse on equal timestamps); the resolved available quantity is then
    held within [0, on_hand].
    """
    keys = ["sku", "location_id"]
    commerce = _newest_per_key(entries, keys, "last_modified_at").rename(
        columns={
            "quantity_on_stock": "commerce_on_hand",
            "available_quantity": "commerce_available",
            "last_modified_at": "commerce_updated_at",
        }
    )
    warehouse = _newest_per_key(levels, keys, "updated_at").rename(
        columns={
            "on_hand": "warehouse_on_hand",
            "available": "warehouse_available",
            "updated_at": "warehouse_updated_at",
        }
    )
    both = commerce.merge(warehouse, on=keys, how="outer")
    for side in ("commerce", "warehouse"):
        for field in FIELDS:
            both[f"{side}_{field}"] = pd.to_numeric(both[f"{side}_{field}"]).astype(float)
    for column in ("commerce_updated_at", "warehouse_updated_at"):
        both[column] = pd.to_datetime(both[column], utc=True)
    has_commerce = both["commerce_updated_at"].notna() | both["commerce_on_hand"].notna()
    has_warehouse = both["warehouse_updated_at"].notna() | both["warehouse_on_hand"].notna()
    commerce_newer = both["commerce_updated_at"].fillna(pd.Timestamp.min.tz_localize(UTC)) > both[
        "warehouse_updated_at"
    ].fillna(pd.Timestamp.min.tz_localize(UTC))

    conflicts = []
    both["conflict_count"] = 0
    for field in FIELDS:
        ours, theirs = both[f"commerce_{field}"], both[f"warehouse_{field}"]
        rule = getattr(rules, field)
        prefer_commerce = commerce_newer if rule == "newest" else pd.Series(rule == "commerce", index=both.index)
        take_commerce = has_commerce & (~has_warehouse | prefer_commerce)
        both[f"{field}_source"] = np.where(take_commerce, "commerce", "warehouse")
        both[f"resolved_{field}"] = ours.where(take_commerce, theirs)
        disagree = has_commerce & has_warehouse & ((ours - theirs).abs() > rules.tolerance_units)
        both["conflict_count"] += disagree.astype(int)
        found = both.loc[disagree]
        conflicts.append(
            pd.DataFrame(
                {
                    "sku": found["sku"],
                    "location_id": found["location_id"],
                    "field": field,
                    "commerce_value": found[f"commerce_{field}"],
                    "warehouse_value": found[f"warehouse_{field}"],
                    "difference": found[f"commerce_{field}"] - found[f"warehouse_{field}"],
                    "tolerance_units": rules.tolerance_units,
                    "commerce_updated_at": found["commerce_updated_at"],
                    "warehouse_updated_at": found["warehouse_updated_at"],
                    "rule": rule,
                    "resolved_from": found[f"{field}_source"],
                    "resolved_value": found[f"resolved_{field}"],
                    "detected_at": detected_at,
                }
            )
        )
    on_hand = both["resolved_on_hand"].clip(lower=0)
    available = both["resolved_available"].fillna(0).clip(lower=0)
    both["on_hand"] = on_hand
    both["available_quantity"] = available.where(on_hand.isna() | (available <= on_hand), on_hand)
    both["last_synced_at"] = both[["commerce_updated_at", "warehouse_updated_at"]].max(axis=1)
    positions = both.sort_values(keys).reset_index(drop=True)
    return positions, pd.concat(conflicts, ignore_index=True).sort_values([*keys, "field"]).reset_index(drop=True)


# --- assets -------------------------------------------------------------------------------

ENTRIES_SQL = (
    "SELECT sku, supply_channel_id AS location_id, quantity_on_stock, available_quantity, restockable_in_days, "
    "last_modified_at FROM core.inventory_entries WHERE sku IS NOT NULL AND supply_channel_id IS NOT NULL "
    "AND deleted_at IS NULL"
)
LEVELS_SQL = (
    "SELECT sku, warehouse_id AS location_id, on_hand, allocated, available, updated_at FROM core.stock_levels "
    "WHERE sku IS NOT NULL AND warehouse_id IS NOT NULL"
)


@dg.multi_asset(
    name="reconcile_inventory",
    specs=[
        dg.AssetSpec(
            asset_key(INVENTORY_POSITIONS),
            deps=[asset_key(INVENTORY_ENTRIES), asset_key(STOCK_LEVELS)],
            group_name=GROUP,
            description=INVENTORY_POSITIONS.description,
            kinds={"python"},
        ),
        dg.AssetSpec(
            asset_key(INVENTORY_CONFLICTS),
            deps=[asset_key(INVENTORY_ENTRIES), asset_key(STOCK_LEVELS)],
            group_name=GROUP,
            description=INVENTORY_CONFLICTS.description,
            kinds={"python"},
        ),
    ],
    pool=HUB_POOL,
)
def reconcile_inventory(context: dg.AssetExecutionContext, hub: HubResource, rules: RulesResource):
    """Positions and their conflicts, rebuilt together in one load from the two systems' current stock."""
    settings = rules.section("inventory", InventoryRules)
    hub.ensure_table(INVENTORY_ENTRIES)  # a hub made before soft deletes gains deleted_at
    entries = read_table(hub, INVENTORY_ENTRIES, ENTRIES_SQL)
    levels = read_table(hub, STOCK_LEVELS, LEVELS_SQL)
    positions, conflicts = reconcile(entries, levels, settings, datetime.now(UTC))
    with hub.load(INVENTORY_POSITIONS.name) as load:
        load.stage(INVENTORY_POSITIONS).append(to_arrow(INVENTORY_POSITIONS, positions))
        load.stage(INVENTORY_CONFLICTS).append(to_arrow(INVENTORY_CONFLICTS, conflicts))
    by_field = conflicts["field"].value_counts().to_dict()
    context.log.info(f"{len(positions):,} positions, {len(conflicts):,} conflicts beyond the tolerance")
    yield materialization(
        hub,
        INVENTORY_POSITIONS,
        load,
        commerce_entries=len(entries),
        warehouse_stock_levels=len(levels),
        commerce_only=int(positions["warehouse_updated_at"].isna().sum()),
        warehouse_only=int(positions["commerce_updated_at"].isna().sum()),
    )
    yield materialization(
        hub,
        INVENTORY_CONFLICTS,
        load,
        tolerance_units=settings.tolerance_units,
        **{f"conflicts_{field}": int(by_field.get(field, 0)) for field in FIELDS},
    )


@dg.asset(
    key=asset_key(V1_INVENTORY_AVAILABILITY),
    deps=[asset_key(INVENTORY_POSITIONS)],
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"python"},
    description=V1_INVENTORY_AVAILABILITY.description,
)
def serving_v1_inventory_availability(hub: HubResource) -> dg.MaterializeResult:
    """The sellable quantity per SKU and location, read by the inventory service."""
    frame = read_table(
        hub,
        INVENTORY_POSITIONS,
        "SELECT sku, location_id, available_quantity, restockable_in_days, last_synced_at "
        "FROM core.inventory_positions",
    )
    frame["is_on_stock"] = frame["available_quantity"] > 0
    with hub.load(V1_INVENTORY_AVAILABILITY.name) as load:
        load.stage(V1_INVENTORY_AVAILABILITY).append(to_arrow(V1_INVENTORY_AVAILABILITY, frame))
    return materialization(hub, V1_INVENTORY_AVAILABILITY, load, skus_on_stock=int(frame["is_on_stock"].sum()))


inventory_assets = [reconcile_inventory, serving_v1_inventory_availability]
