"""Inventory reconciliation: commerce inventory entries and WMS stock levels unified per (SKU, location).

Both systems describe stock per SKU and location (the commerce supply channel id is the warehouse id).
The `inventory` section of the rules file says which system wins for each field (`warehouse`,
`commerce`, or `newest` timestamp) and how many units of disagreement are tolerated; every disagreement
beyond the tolerance lands in `quality.inventory_conflicts` with both values, both timestamps and the
resolution taken. The services read `serving.v1_inventory_availability`.
"""

import dataclasses
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import dagster as dg
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, Field

from assets.commerce import INVENTORY_ENTRIES
from assets.landing import asset_key, materialization
from assets.warehouse import STOCK_LEVELS
from resources.hub import HUB_POOL, HubResource, Load, TableSpec, held_open, quoted
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


# --- incremental read models ----------------------------------------------------------------
#
# In `changes` mode a read model recomputes only the keys whose inputs changed since it last ran.
# What it last reflected (its basis) commits with its rows, as the cursor of its sync state: the
# newest load batch of each input table, a fingerprint of its rules and the generation of the whole
# rebuild it descends from. Every hub row carries the batch that last wrote it (`_batch_id`), and a
# table's batch ids grow in commit order (a load locks its tables before it takes one), so the keys
# of rows above the basis are the changed ones. What cannot be followed key by key (a rules change,
# a global input such as channels, an upstream whole rebuild) makes the run rebuild whole.


class ServingConfig(dg.Config):
    """`rebuild` recomputes the whole read model; `changes` only the keys whose inputs changed since
    it last ran (the whole model when that cannot be told, e.g. after a rules change)."""

    mode: Literal["rebuild", "changes"] = "rebuild"


@dataclass(frozen=True)
class Basis:
    """What a read model was computed from: input watermarks, rules fingerprint, rebuild generation."""

    tables: dict[str, int]
    rules: str
    generation: str

    def encode(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def of(cls, hub: HubResource, sync_key: str) -> "Basis | None":
        """The basis committed by the last load of `sync_key` (None before the first one)."""
        state = hub.sync_state(sync_key)
        if state is None or not state.cursor:
            return None
        try:
            value = orjson.loads(state.cursor)
            return cls({str(k): int(v) for k, v in value["tables"].items()}, value["rules"], value["generation"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None


def new_generation() -> str:
    return uuid.uuid4().hex


def existing(hub: HubResource, specs: Iterable[TableSpec]) -> set[str]:
    """The names of the tables of `specs` that the hub holds (one query)."""
    names = sorted({spec.name for spec in specs})
    frame = hub.read_frame(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables"
        f" WHERE table_schema || '.' || table_name IN ({', '.join('?' * len(names))})",
        names,
    )
    return set(frame["name"])


def watermarks(hub: HubResource, specs: Sequence[TableSpec]) -> dict[str, int]:
    """The newest load batch of each table: 0 when it is empty, -1 when it was never created."""
    present = existing(hub, specs)
    found = {spec.name: -1 for spec in specs}
    if present:
        frame = hub.read_frame(
            " UNION ALL ".join(
                f"SELECT '{name}' AS name, max(_batch_id) AS batch FROM {quoted(name)}" for name in sorted(present)
            )
        )
        found.update(
            {
                name: 0 if pd.isna(batch) else int(batch)
                for name, batch in zip(frame["name"], frame["batch"], strict=True)
            }
        )
    return found


def fingerprint(settings: BaseModel) -> str:
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]


def rebuild_reason(
    previous: Basis | None, current: Basis, global_tables: Iterable[str] = (), upstream: Basis | None = None
) -> str | None:
    """Why the whole read model must be rebuilt rather than its changed keys; None when it need not.

    `global_tables` are inputs every row reads (the others are read key by key and must exist);
    `upstream` is the basis of the read model it derives from (the inventory positions), whose whole
    rebuilds it must follow whole.
    """
    if previous is None:
        return "no basis from an earlier build"
    global_tables = set(global_tables)
    if missing := sorted(name for name, batch in current.tables.items() if batch < 0 and name not in global_tables):
        return f"{', '.join(missing)} not loaded yet"
    if previous.rules != current.rules:
        return "its rules changed"
    if upstream is not None and (not upstream.generation or upstream.generation != previous.generation):
        return "its input was rebuilt whole"
    moved = sorted(name for name in global_tables if previous.tables.get(name) != current.tables.get(name))
    return f"{', '.join(moved)} changed" if moved else None


def changed_keys(hub: HubResource, queries: Sequence[tuple[TableSpec, str]], previous: Basis) -> set[str]:
    """The keys (first column) the queries find in rows their tables loaded after `previous` (one query).

    Each query takes one parameter: the batch id of its table in `previous`.
    """
    present = existing(hub, [spec for spec, _ in queries])
    chosen = [(spec, sql) for spec, sql in queries if spec.name in present]
    if not chosen:
        return set()
    frame = hub.read_frame(
        " UNION ".join(f"({sql})" for _, sql in chosen), [previous.tables.get(spec.name, 0) for spec, _ in chosen]
    )
    return set(frame.iloc[:, 0].dropna())


def rows_of(hub: HubResource, sql: str, keys: Iterable[str], params: Sequence = ()) -> pd.DataFrame:
    """`sql` for the given keys only: its `{keys}` becomes the placeholders of up to 1,000 keys at a time."""
    keys = sorted(keys)
    if not keys:
        return hub.read_frame(sql.format(keys="NULL"), list(params))
    chunks = [keys[start : start + 1000] for start in range(0, len(keys), 1000)]
    frames = [hub.read_frame(sql.format(keys=", ".join("?" * len(chunk))), [*params, *chunk]) for chunk in chunks]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def by_key(spec: TableSpec, key: str) -> TableSpec:
    """`spec` loaded key by key: the rows of the keys a batch names are replaced, the others kept."""
    return dataclasses.replace(spec, merge="replace_children", parent_key=key)


def stage_keys(load: Load, spec: TableSpec, frame: pd.DataFrame, key: str, keys: set[str] | None) -> None:
    """Stage `frame` as `spec`'s new rows: the whole table, or only the rows of `keys` (None: whole)."""
    if keys is None:
        load.stage(spec).append(to_arrow(spec, frame))
        return
    stage = load.stage(by_key(spec, key))
    stage.replace_parents(pa.array(sorted(keys), pa.string()))
    stage.append(to_arrow(spec, frame))


# Keys (SKUs) whose stock changed: the inventory read models follow these.
SKU_CHANGES = (
    (INVENTORY_ENTRIES, "SELECT DISTINCT sku FROM core.inventory_entries WHERE _batch_id > ? AND sku IS NOT NULL"),
    (STOCK_LEVELS, "SELECT DISTINCT sku FROM core.stock_levels WHERE _batch_id > ? AND sku IS NOT NULL"),
)


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
def reconcile_inventory(
    context: dg.AssetExecutionContext, config: ServingConfig, hub: HubResource, rules: RulesResource
):
    """Positions and their conflicts from the two systems' current stock, in one load: all of them,
    or in `changes` mode those of the SKUs whose entries or stock levels changed since the last run."""
    with held_open(hub):
        settings = rules.section("inventory", InventoryRules)
        hub.ensure_table(INVENTORY_ENTRIES)  # a hub made before soft deletes gains deleted_at
        hub.ensure_table(STOCK_LEVELS)
        basis = Basis(watermarks(hub, (INVENTORY_ENTRIES, STOCK_LEVELS)), fingerprint(settings), new_generation())
        previous = Basis.of(hub, INVENTORY_POSITIONS.name)
        skus, reason = None, "mode rebuild"
        if config.mode == "changes":
            reason = rebuild_reason(previous, basis)
            if reason is None:
                skus = changed_keys(hub, SKU_CHANGES, previous)
                basis = dataclasses.replace(basis, generation=previous.generation)
        if skus is None:
            entries = read_table(hub, INVENTORY_ENTRIES, ENTRIES_SQL)
            levels = read_table(hub, STOCK_LEVELS, LEVELS_SQL)
        else:
            entries = rows_of(hub, ENTRIES_SQL + " AND sku IN ({keys})", skus)
            levels = rows_of(hub, LEVELS_SQL + " AND sku IN ({keys})", skus)
        positions, conflicts = reconcile(entries, levels, settings, datetime.now(UTC))
        with hub.load(INVENTORY_POSITIONS.name) as load:
            stage_keys(load, INVENTORY_POSITIONS, positions, "sku", skus)
            stage_keys(load, INVENTORY_CONFLICTS, conflicts, "sku", skus)
            load.advance(cursor=basis.encode())
        scope = rebuilt_scope(skus, reason)
        by_field = conflicts["field"].value_counts().to_dict()
        context.log.info(f"{len(positions):,} positions, {len(conflicts):,} conflicts beyond the tolerance ({scope})")
        results = (
            materialization(
                hub,
                INVENTORY_POSITIONS,
                load,
                **scope_metadata(skus, reason),
                commerce_entries=len(entries),
                warehouse_stock_levels=len(levels),
                commerce_only=int(positions["warehouse_updated_at"].isna().sum()),
                warehouse_only=int(positions["commerce_updated_at"].isna().sum()),
            ),
            materialization(
                hub,
                INVENTORY_CONFLICTS,
                load,
                **scope_metadata(skus, reason),
                tolerance_units=settings.tolerance_units,
                **{f"conflicts_{field}": int(by_field.get(field, 0)) for field in FIELDS},
            ),
        )
    yield from results  # the file is free again while Dagster stores them


def rebuilt_scope(keys: set[str] | None, reason: str) -> str:
    return f"whole: {reason}" if keys is None else f"{len(keys):,} changed keys"


def scope_metadata(keys: set[str] | None, reason: str) -> dict[str, object]:
    """What a read model's run recomputed: the whole model (and why) or the changed keys."""
    if keys is None:
        return {"rebuilt": "whole", "rebuilt_because": reason}
    sample = dg.MetadataValue.json(sorted(keys)[:20])
    return {"rebuilt": "changed keys", "keys_recomputed": len(keys), "keys_sample": sample}


AVAILABILITY_SQL = (
    "SELECT sku, location_id, available_quantity, restockable_in_days, last_synced_at FROM core.inventory_positions"
)


@dg.asset(
    key=asset_key(V1_INVENTORY_AVAILABILITY),
    deps=[asset_key(INVENTORY_POSITIONS)],
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"python"},
    description=V1_INVENTORY_AVAILABILITY.description,
)
def serving_v1_inventory_availability(
    context: dg.AssetExecutionContext, config: ServingConfig, hub: HubResource
) -> dg.MaterializeResult:
    """The sellable quantity per SKU and location, read by the inventory service; in `changes` mode only
    for the SKUs the positions were recomputed for since this model last ran."""
    with held_open(hub):
        upstream = Basis.of(hub, INVENTORY_POSITIONS.name) or Basis({}, "", "")
        basis = dataclasses.replace(upstream, rules="")
        previous = Basis.of(hub, V1_INVENTORY_AVAILABILITY.name)
        skus, reason = None, "mode rebuild"
        if config.mode == "changes":
            reason = rebuild_reason(previous, basis, upstream=upstream)
            if reason is None:
                skus = changed_keys(hub, SKU_CHANGES, previous)
        if skus is None:
            frame = read_table(hub, INVENTORY_POSITIONS, AVAILABILITY_SQL)
        else:
            frame = rows_of(hub, AVAILABILITY_SQL + " WHERE sku IN ({keys})", skus)
        frame["is_on_stock"] = frame["available_quantity"] > 0
        with hub.load(V1_INVENTORY_AVAILABILITY.name) as load:
            stage_keys(load, V1_INVENTORY_AVAILABILITY, frame, "sku", skus)
            load.advance(cursor=basis.encode())
        context.log.info(f"{V1_INVENTORY_AVAILABILITY.name}: {len(frame):,} rows ({rebuilt_scope(skus, reason)})")
        return materialization(
            hub,
            V1_INVENTORY_AVAILABILITY,
            load,
            **scope_metadata(skus, reason),
            skus_on_stock=int(frame["is_on_stock"].sum()),
        )


inventory_assets = [reconcile_inventory, serving_v1_inventory_availability]
