"""What the reliability tests share: the sync under test, hub snapshots and the comparison with the source.

The sync is commerce (catalog, inventory), payments (charges, refunds) and warehouse (stock levels,
the movement feed) at a small size, raw and core, as `full_sync_job` runs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import orjson
import pandas as pd
import pyarrow as pa

from assets.commerce import (
    INVENTORY_ENTRIES,
    PRICES,
    PRODUCT_VARIANTS,
    PRODUCTS,
    RAW_INVENTORY_ENTRIES,
    RAW_PRODUCT_PROJECTIONS,
    core_catalog,
    core_inventory_entries,
    flatten_inventory,
    flatten_products,
    raw_commerce_inventory_entries,
    raw_commerce_product_projections,
)
from assets.landing import Flatten, flattened_rows
from assets.payments import (
    PAYMENTS,
    RAW_CHARGES,
    RAW_REFUNDS,
    REFUNDS,
    core_payments,
    core_refunds,
    flatten_charges,
    flatten_refunds,
    raw_payments_charges,
    raw_payments_refunds,
)
from assets.warehouse import (
    RAW_STOCK_LEVELS,
    RAW_STOCK_MOVEMENTS,
    STOCK_LEVELS,
    STOCK_MOVEMENTS,
    core_stock_levels,
    core_stock_movements,
    flatten_stock_levels,
    flatten_stock_movements,
    raw_warehouse_stock_levels,
    raw_warehouse_stock_movements,
)
from quality.quarantine import QUARANTINE
from resources.hub import HubResource, TableSpec
from resources.payments import StripeResource
from resources.warehouse import WarehouseResource
from tests.conftest import Simulator, commerce_resource

PRODUCTS_UNDER_TEST = 200
SEED = 7
SYSTEMS = {"commerce": "/commerce/beauty-hub", "payments": "/payments", "warehouse": "/warehouse"}

RAW_ASSETS = [
    raw_commerce_product_projections,
    raw_commerce_inventory_entries,
    raw_payments_charges,
    raw_payments_refunds,
    raw_warehouse_stock_levels,
]
SYNC_ASSETS = [
    *RAW_ASSETS,
    raw_warehouse_stock_movements,
    core_catalog,
    core_inventory_entries,
    core_payments,
    core_refunds,
    core_stock_levels,
    core_stock_movements,
]

#: system -> its assets among SYNC_ASSETS
SYSTEM_ASSETS = {
    system: [a for a in SYNC_ASSETS if a.group_names_by_key[next(iter(a.keys))] == system] for system in SYSTEMS
}


@dataclass(frozen=True)
class Dataset:
    """A raw table, the core tables conformed from it (with the core column that holds the raw id), how
    to read the whole source list directly, and the flatten that conforms it."""

    raw: TableSpec
    core: tuple[tuple[TableSpec, str], ...]
    system: str
    read: Callable[[dict], Iterable[list[dict]]]
    flatten: Flatten


DATASETS = (
    Dataset(
        RAW_PRODUCT_PROJECTIONS,
        ((PRODUCTS, "product_id"), (PRODUCT_VARIANTS, "product_id"), (PRICES, "product_id")),
        "commerce",
        lambda r: r["commerce"].export_pages("product-projections"),
        flatten_products,
    ),
    Dataset(
        RAW_INVENTORY_ENTRIES,
        ((INVENTORY_ENTRIES, "inventory_entry_id"),),
        "commerce",
        lambda r: r["commerce"].export_pages("inventory"),
        flatten_inventory,
    ),
    Dataset(
        RAW_CHARGES,
        ((PAYMENTS, "payment_id"),),
        "payments",
        lambda r: r["payments"].list_pages("charges"),
        flatten_charges,
    ),
    Dataset(
        RAW_REFUNDS,
        ((REFUNDS, "refund_id"),),
        "payments",
        lambda r: r["payments"].list_pages("refunds"),
        flatten_refunds,
    ),
    Dataset(
        RAW_STOCK_LEVELS,
        ((STOCK_LEVELS, "stock_level_id"),),
        "warehouse",
        lambda r: r["warehouse"].pages("stock-levels"),
        flatten_stock_levels,
    ),
    Dataset(
        RAW_STOCK_MOVEMENTS,
        ((STOCK_MOVEMENTS, "movement_id"),),
        "warehouse",
        lambda r: r["warehouse"].movement_feed(),
        flatten_stock_movements,
    ),
)
HUB_SCHEMAS = ("raw", "core", "quality", "ops")


def resources(simulator: Simulator, hub: HubResource, **client: Any) -> dict:
    """The sync's resources, with quick retries (and any client setting overridden, e.g. read_timeout_s)."""
    quick = {"backoff_initial_s": 0.01, "backoff_max_s": 0.2, **client}
    return {
        "hub": hub,
        "commerce": commerce_resource(simulator, **quick),
        "payments": StripeResource(api_url=f"{simulator.url}/payments", api_key="sk_test_hub", **quick),
        "warehouse": WarehouseResource(api_url=f"{simulator.url}/warehouse", api_key="wh_test_hub", **quick),
    }


def sync(
    simulator: Simulator,
    hub: HubResource,
    *,
    mode: str = "full",
    assets: Iterable[dg.AssetsDefinition] = SYNC_ASSETS,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    **client: Any,
) -> dg.ExecuteInProcessResult:
    assets = list(assets)
    config = {"ops": {a.op.name: {"config": {"mode": mode}} for a in RAW_ASSETS if a in assets}}
    return dg.materialize(
        assets,
        resources=resources(simulator, hub, **client),
        run_config=config,
        raise_on_error=raise_on_error,
        instance=instance,
    )


def faults(simulator: Simulator, rule: dict, systems: Iterable[str] = SYSTEMS) -> list[dict]:
    """Switch on `rule` for each of `systems` (one rule per system path)."""
    rules = [{**rule, "path_prefix": SYSTEMS[s]} for s in systems]
    return simulator.admin("POST", "faults", faults=rules)["faults"]


def fired(simulator: Simulator) -> int:
    """How often the faults switched on last have fired (rules used up included)."""
    return sum(simulator.admin("GET", "faults")["fired"].values())


def _canonical(value: Any) -> Any:
    """One form for a value read from Arrow or from a hub frame: JSON text parsed, times in ISO form,
    numpy scalars as Python ones, whole floats as ints, NaN and NaT as None."""
    if isinstance(value, (list, dict)):
        return value
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _sort_key(record: tuple) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)


def rows(hub: HubResource, name: str, business_only: bool = False) -> list[tuple]:
    """Every row of table `name`, canonical and sorted; `business_only` leaves out `_...` columns."""
    if not hub.backend.table_exists(name):
        return []
    frame = hub.read_frame(f"SELECT * FROM {name}")
    if business_only:
        frame = frame[[c for c in frame.columns if not c.startswith("_")]]
    records = [tuple(_canonical(v) for v in row) for row in frame.itertuples(index=False)]
    return sorted(records, key=_sort_key)


def tables(hub: HubResource) -> list[str]:
    frame = hub.read_frame(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN (?, ?, ?, ?)",
        list(HUB_SCHEMAS),
    )
    return sorted(f"{s}.{t}" for s, t in zip(frame["table_schema"], frame["table_name"], strict=True))


def checksum(values: Any) -> str:
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def hub_state(hub: HubResource) -> dict[str, str]:
    """A checksum of every table of the hub that holds rows, every column included (ops.sync_state among
    them). An empty table counts as absent: a failed load may leave the empty tables it declared."""
    hub.backend.ensure_schemas()
    state = {name: rows(hub, name) for name in tables(hub)}
    return {name: checksum(content) for name, content in state.items() if content}


def data_state(hub: HubResource) -> dict[str, str]:
    """`hub_state` of the data: raw, core and quality (the ops log of batches and runs left out)."""
    return {name: digest for name, digest in hub_state(hub).items() if not name.startswith("ops.")}


def documents(hub: HubResource, raw: TableSpec) -> dict[str, dict]:
    """id -> document of a raw table."""
    if not hub.backend.table_exists(raw.name):
        return {}
    frame = hub.read_frame(f"SELECT id, document FROM {raw.name}")
    pairs = zip(frame["id"], frame["document"], strict=True)
    return {i: orjson.loads(d) if isinstance(d, str) else d for i, d in pairs}


def quarantined(hub: HubResource, dataset: str) -> list[dict]:
    if not hub.backend.table_exists(QUARANTINE.name):
        return []
    frame = hub.read_frame("SELECT reason, record FROM quality.quarantine WHERE dataset = ?", [dataset])
    return [{"reason": r, "record": orjson.loads(d)} for r, d in zip(frame["reason"], frame["record"], strict=True)]


@dataclass
class Reconciliation:
    records: int = 0  # source records compared
    quarantined: int = 0


@dataclass
class Truth:
    """The source as it is now, read directly (faults off): documents by id and the core rows they make."""

    documents: dict[str, dict[str, dict]]  # raw table -> id -> document
    core: dict[str, list[tuple]]  # core table -> canonical rows (business columns)


def truth(simulator: Simulator) -> Truth:
    simulator.admin("DELETE", "faults")
    clients = resources(simulator, HubResource(url="duckdb:///:memory:"))
    documents, core = {}, {}
    for dataset in DATASETS:
        docs = {d["id"]: orjson.loads(orjson.dumps(d)) for page in dataset.read(clients) for d in page}
        documents[dataset.raw.name] = docs
        batch = pa.table({"id": list(docs), "document": [orjson.dumps(d).decode() for d in docs.values()]})
        targets = [spec for spec, _ in dataset.core]
        for name, table in flattened_rows(dataset.flatten, batch, dataset.raw, targets).items():
            core[name] = _arrow_rows(table)
    return Truth(documents, core)


def _arrow_rows(table: pa.Table) -> list[tuple]:
    names = [c for c in table.column_names if not c.startswith("_")]
    records = [tuple(_canonical(row[c]) for c in names) for row in table.to_pylist()]
    return sorted(records, key=_sort_key)


def reconcile(hub: HubResource, source: Truth) -> Reconciliation:
    """Assert `hub` holds exactly what the source holds, apart from the records `hub` quarantined:
    those are in quality.quarantine whole with a reason, and the counts add up exactly."""
    result = Reconciliation()
    for dataset in DATASETS:
        want, got = source.documents[dataset.raw.name], documents(hub, dataset.raw)
        held = quarantined(hub, dataset.raw.name)
        assert set(got) <= set(want), f"{dataset.raw.name}: records the source does not have"
        missing = set(want) - set(got)
        assert len(got) + len(held) == len(want), f"{dataset.raw.name}: {len(missing)} missing, {len(held)} held"
        for record_id in missing:  # each missing record is held, whole, with a reason (its id may be what broke)
            assert any(_same_record(q["record"], want[record_id]) and q["reason"] for q in held), record_id
        for record_id, document in got.items():
            assert document == want[record_id], f"{dataset.raw.name} {record_id}: version or content differs"
        for spec, id_column in dataset.core:
            index = [c for c, _ in spec.all_columns if not c.startswith("_")].index(id_column)
            expected = [r for r in source.core[spec.name] if r[index] not in missing]
            assert rows(hub, spec.name, business_only=True) == expected, f"{spec.name} differs from the source"
        result.records += len(want)
        result.quarantined += len(held)
    return result


def _same_record(held: dict, source: dict) -> bool:
    """Whether a quarantined record is the source's record with (at most) one field broken."""
    keys = set(held) | set(source)
    return sum(held.get(k) != source.get(k) for k in keys) <= 1


def watermark_behind_data(hub: HubResource) -> int:
    """Assert each committed watermark is no later than the newest committed record of its raw table."""
    checked = 0
    for dataset in DATASETS:
        state = hub.sync_state(dataset.raw.name)
        if state is None or state.watermark is None:
            continue
        newest = hub.scalar(f"SELECT max(last_modified_at) FROM {dataset.raw.name}")
        assert newest is not None and state.watermark <= newest, f"{dataset.raw.name}: watermark leads the data"
        checked += 1
    return checked
