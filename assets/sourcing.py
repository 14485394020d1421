"""Sourcing: for each SKU and fulfilment region, the candidate warehouses ranked, and the preferred supplier.

The `sourcing` section of the rules file names the regions (with their centroids), the horizon within
which inbound purchase orders count as available-to-promise, the ranking criteria in order, and what a
replenishment order looks like (quantity, longest acceptable lead time, exchange rates to compare offers).
"""

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from assets.inventory import (
    INVENTORY_POSITIONS,
    SKU_CHANGES,
    Basis,
    ServingConfig,
    changed_keys,
    fingerprint,
    read_table,
    rebuild_reason,
    rebuilt_scope,
    rows_of,
    scope_metadata,
    stage_keys,
    watermarks,
)
from assets.landing import asset_key, materialization
from assets.warehouse import (
    MINOR_UNITS,
    PURCHASE_ORDER_LINES,
    PURCHASE_ORDERS,
    SUPPLIER_OFFERS,
    SUPPLIERS,
    WAREHOUSES,
)
from resources.hub import HUB_POOL, HubResource, TableSpec, held_open
from resources.rules import RulesResource

GROUP = "serving"
EARTH_RADIUS_KM = 6371.0088
Criterion = Literal["is_on_stock", "available_quantity", "available_to_promise", "distance_km", "lead_time_days"]

V1_SOURCING_OPTIONS = TableSpec(
    "serving.v1_sourcing_options",
    (
        ("sku", "text"),
        ("region", "text"),
        ("warehouse_id", "text"),
        ("rank", "int"),
        ("available_quantity", "bigint"),
        ("inbound_quantity", "bigint"),
        ("available_to_promise", "bigint"),
        ("is_on_stock", "bool"),
        ("distance_km", "double"),
        ("lead_time_days", "int"),
        ("horizon_at", "timestamp"),
        ("preferred_supplier_id", "text"),
        ("preferred_supplier_unit_cost_minor", "bigint"),
        ("preferred_supplier_currency", "text"),
        ("preferred_supplier_lead_time_days", "int"),
        ("preferred_supplier_min_order_qty", "bigint"),
        ("computed_at", "timestamp"),
    ),
    ("sku", "region", "warehouse_id"),
    merge="replace",
    description=(
        "Candidate warehouses per SKU and fulfilment region, densely ranked by the `sourcing` rules, with the "
        "preferred supplier to replenish the SKU from."
    ),
)


class Region(BaseModel):
    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class RankBy(BaseModel):
    criterion: Criterion
    direction: Literal["asc", "desc"]


class Replenishment(BaseModel):
    order_quantity: int = Field(ge=1, description="Units a replenishment order asks for.")
    max_lead_time_days: int = Field(ge=0, description="Suppliers slower than this are not preferred.")
    reporting_currency: str = Field(pattern=r"^[A-Z]{3}$")
    exchange_rates: dict[str, float] = Field(description="Value of one unit of each currency in the reporting one.")

    @field_validator("exchange_rates")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = [currency for currency, rate in rates.items() if not rate > 0]
        if bad:
            raise ValueError(f"rates must be positive: {', '.join(bad)}")
        return rates


class SourcingRules(BaseModel):
    """The `sourcing` section of the rules file."""

    horizon_days: int = Field(ge=0, description="Inbound purchase orders expected within this many days count.")
    inbound_statuses: list[str] = Field(min_length=1)
    regions: list[Region] = Field(min_length=1)
    ranking: list[RankBy] = Field(min_length=1, description="Criteria in order; the first decides first.")
    replenishment: Replenishment

    @field_validator("regions")
    @classmethod
    def _unique_names(cls, regions: list[Region]) -> list[Region]:
        names = [r.name for r in regions]
        if len(set(names)) != len(names):
            raise ValueError("region names must be unique")
        return regions


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between points given in degrees (works on scalars and arrays)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def dense_ranks(frame: pd.DataFrame, groups: list[str], ranking: list[RankBy]) -> pd.Series:
    """1, 2, 3... per group by the criteria in order; equal candidates share a rank; unknowns rank last."""
    keys = pd.DataFrame(index=frame.index)
    for number, rank_by in enumerate(ranking):
        value = frame[rank_by.criterion].astype(float)
        keys[f"k{number}"] = (value if rank_by.direction == "asc" else -value).fillna(math.inf)
    ordered = pd.concat([frame[groups], keys], axis=1).sort_values([*groups, *keys.columns])
    new_group = (ordered[groups] != ordered[groups].shift()).any(axis=1)
    new_value = new_group | (ordered[keys.columns] != ordered[keys.columns].shift()).any(axis=1)
    ranks = new_value.astype(int).groupby(new_group.cumsum()).cumsum()
    return ranks.reindex(frame.index)


def preferred_suppliers(offers: pd.DataFrame, replenishment: Replenishment) -> pd.DataFrame:
    """Per SKU, the cheapest offer (in the reporting currency) that takes the order quantity, has the stock
    for it and whose supplier delivers within the longest acceptable lead time; ties go to the faster, then
    the lower supplier id.

    offers: sku, supplier_id, unit_cost_minor, currency, min_order_qty, available_to_promise, lead_time_days.
    """
    rate = offers["currency"].map(replenishment.exchange_rates)
    digits = offers["currency"].map(lambda c: MINOR_UNITS.get(c, 2))
    eligible = offers.assign(cost=offers["unit_cost_minor"] / 10.0**digits * rate).loc[
        rate.notna()
        & offers["unit_cost_minor"].notna()
        & (offers["min_order_qty"] <= replenishment.order_quantity)
        & (offers["available_to_promise"] >= replenishment.order_quantity)
        & offers["lead_time_days"].between(0, replenishment.max_lead_time_days)
    ]
    best = eligible.sort_values(["sku", "cost", "lead_time_days", "supplier_id"]).drop_duplicates("sku")
    return best[["sku", "supplier_id", "unit_cost_minor", "currency", "lead_time_days", "min_order_qty"]].rename(
        columns={
            "supplier_id": "preferred_supplier_id",
            "unit_cost_minor": "preferred_supplier_unit_cost_minor",
            "currency": "preferred_supplier_currency",
            "lead_time_days": "preferred_supplier_lead_time_days",
            "min_order_qty": "preferred_supplier_min_order_qty",
        }
    )


def sourcing_options(
    positions: pd.DataFrame,
    inbound: pd.DataFrame,
    warehouses: pd.DataFrame,
    offers: pd.DataFrame,
    rules: SourcingRules,
    as_of: datetime,
) -> pd.DataFrame:
    """The ranked options of every SKU in every region.

    positions: sku, warehouse_id, available_quantity. inbound: sku, warehouse_id, open_quantity, expected_at
    (open purchase-order lines). warehouses: warehouse_id, latitude, longitude. Candidates are the warehouses
    holding a position or expecting inbound stock of the SKU. Inbound counts when expected before the horizon
    (overdue included). A candidate's lead time is 0 days with stock on hand, else the days until its first
    inbound arrival within the horizon, else the preferred supplier's lead time, else unknown.
    """
    horizon_at = as_of + timedelta(days=rules.horizon_days)
    inbound = inbound.assign(expected_at=pd.to_datetime(inbound["expected_at"], utc=True))
    due = inbound.loc[(inbound["open_quantity"] > 0) & (inbound["expected_at"] <= horizon_at)]
    arriving = due.groupby(["sku", "warehouse_id"], as_index=False).agg(
        inbound_quantity=("open_quantity", "sum"), first_arrival_at=("expected_at", "min")
    )
    stock = positions.groupby(["sku", "warehouse_id"], as_index=False)["available_quantity"].sum()
    candidates = stock.merge(arriving, on=["sku", "warehouse_id"], how="outer").merge(
        warehouses, on="warehouse_id", how="inner"
    )
    candidates["available_quantity"] = candidates["available_quantity"].fillna(0).clip(lower=0)
    candidates["inbound_quantity"] = candidates["inbound_quantity"].fillna(0)
    candidates["available_to_promise"] = candidates["available_quantity"] + candidates["inbound_quantity"]
    candidates["is_on_stock"] = candidates["available_quantity"] > 0
    candidates = candidates.merge(preferred_suppliers(offers, rules.replenishment), on="sku", how="left")
    arrival_days = np.ceil((candidates["first_arrival_at"] - pd.Timestamp(as_of)).dt.total_seconds() / 86400)
    candidates["lead_time_days"] = (
        arrival_days.clip(lower=0)
        .where(candidates["first_arrival_at"].notna(), candidates["preferred_supplier_lead_time_days"])
        .where(~candidates["is_on_stock"], 0)
    )
    regions = pd.DataFrame([r.model_dump() for r in rules.regions]).rename(
        columns={"name": "region", "latitude": "region_latitude", "longitude": "region_longitude"}
    )
    options = candidates.merge(regions, how="cross")
    options["distance_km"] = haversine_km(
        options["latitude"], options["longitude"], options["region_latitude"], options["region_longitude"]
    )
    options["rank"] = dense_ranks(options, ["sku", "region"], rules.ranking)
    options["horizon_at"] = horizon_at
    options["computed_at"] = as_of
    return options.sort_values(["sku", "region", "rank", "warehouse_id"]).reset_index(drop=True)


# --- asset --------------------------------------------------------------------------------


class SourcingConfig(ServingConfig):
    """`as_of` (ISO-8601, UTC) fixes the moment the horizon counts from; empty means now."""

    as_of: str = ""


# Inputs read whole (warehouses) or by SKU but changed only by the warehouse syncs: a change there
# rebuilds the whole model.
WHOLE_INPUTS = (WAREHOUSES, PURCHASE_ORDERS, PURCHASE_ORDER_LINES, SUPPLIER_OFFERS, SUPPLIERS)
POSITIONS_SQL = "SELECT sku, location_id AS warehouse_id, available_quantity FROM core.inventory_positions"
WAREHOUSES_SQL = "SELECT warehouse_id, latitude, longitude FROM core.warehouses"
INBOUND_SQL = (
    "SELECT l.sku, o.warehouse_id, l.quantity_ordered - COALESCE(l.quantity_received, 0) AS open_quantity, "
    "o.expected_at FROM core.purchase_order_lines l "
    "JOIN core.purchase_orders o ON o.purchase_order_id = l.purchase_order_id "
    "WHERE o.status IN ({statuses}) AND l.sku IS NOT NULL"
)
OFFERS_SQL = (
    "SELECT f.sku, f.supplier_id, f.unit_cost_minor, f.currency, f.min_order_qty, f.available_to_promise, "
    "s.lead_time_days FROM core.supplier_offers f JOIN core.suppliers s ON s.supplier_id = f.supplier_id"
)


@dg.asset(
    key=asset_key(V1_SOURCING_OPTIONS),
    deps=[asset_key(t) for t in (INVENTORY_POSITIONS, WAREHOUSES, PURCHASE_ORDERS, SUPPLIER_OFFERS, SUPPLIERS)],
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"python"},
    description=V1_SOURCING_OPTIONS.description,
)
def serving_v1_sourcing_options(
    context: dg.AssetExecutionContext, config: SourcingConfig, hub: HubResource, rules: RulesResource
) -> dg.MaterializeResult:
    """Rebuilt from the reconciled positions, open purchase orders and the supplier offers: whole, or in
    `changes` mode for the SKUs whose positions were recomputed since it last ran, as long as the
    warehouse tables it reads whole (warehouses, orders, offers, suppliers) and its rules are unchanged."""
    with held_open(hub):
        settings = rules.section("sourcing", SourcingRules)
        as_of = datetime.fromisoformat(config.as_of).astimezone(UTC) if config.as_of else datetime.now(UTC)
        upstream = Basis.of(hub, INVENTORY_POSITIONS.name) or Basis({}, "", "")
        others = watermarks(hub, WHOLE_INPUTS)
        for spec in WHOLE_INPUTS:  # read or joined below: created empty when never loaded
            if others[spec.name] < 0:
                hub.ensure_table(spec)
                others[spec.name] = 0  # what the next run finds, so it need not rebuild whole
        basis = dataclasses.replace(upstream, tables={**upstream.tables, **others}, rules=fingerprint(settings))
        previous = Basis.of(hub, V1_SOURCING_OPTIONS.name)
        skus, reason = None, "mode rebuild"
        if config.mode == "changes":
            reason = rebuild_reason(previous, basis, others, upstream)
            if reason is None:
                skus = changed_keys(hub, SKU_CHANGES, previous)
        placeholders = ", ".join("?" for _ in settings.inbound_statuses)
        inbound_sql = INBOUND_SQL.format(statuses=placeholders)
        warehouses = read_table(hub, WAREHOUSES, WAREHOUSES_SQL)
        if skus is None:
            positions = read_table(hub, INVENTORY_POSITIONS, POSITIONS_SQL)
            inbound = read_table(hub, PURCHASE_ORDER_LINES, inbound_sql, settings.inbound_statuses)
            offers = read_table(hub, SUPPLIER_OFFERS, OFFERS_SQL)
        else:
            positions = rows_of(hub, POSITIONS_SQL + " WHERE sku IN ({keys})", skus)
            inbound = rows_of(hub, inbound_sql + " AND l.sku IN ({keys})", skus, settings.inbound_statuses)
            offers = rows_of(hub, OFFERS_SQL + " WHERE f.sku IN ({keys})", skus)
        options = sourcing_options(positions, inbound, warehouses, offers, settings, as_of)
        unplaced = positions.loc[~positions["warehouse_id"].isin(warehouses["warehouse_id"])]
        if len(unplaced):
            context.log.warning(f"{len(unplaced):,} positions are at locations that are not warehouses: not candidates")
        with hub.load(V1_SOURCING_OPTIONS.name) as load:
            stage_keys(load, V1_SOURCING_OPTIONS, options, "sku", skus)
            load.advance(cursor=basis.encode())
        context.log.info(f"{V1_SOURCING_OPTIONS.name}: {len(options):,} options ({rebuilt_scope(skus, reason)})")
        return materialization(
            hub,
            V1_SOURCING_OPTIONS,
            load,
            **scope_metadata(skus, reason),
            as_of=as_of.isoformat(),
            regions=len(settings.regions),
            skus=int(options["sku"].nunique()),
            skus_without_preferred_supplier=int(options.loc[options["preferred_supplier_id"].isna(), "sku"].nunique()),
            positions_not_at_warehouses=len(unplaced),
        )


sourcing_assets = [serving_v1_sourcing_options]
