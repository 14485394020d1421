"""Warehouse system (WMS): warehouses, stock, the movement feed, suppliers, purchase orders and the
nightly supplier CSV feeds, raw and core."""

import csv
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from assets.landing import (
    RecordShape,
    asset_key,
    conformed_assets,
    empty_columns,
    land_pages,
    materialization,
    raw_table,
)
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from quality.reference import ISO_4217_ACTIVE
from resources.http import ExternalSystemError
from resources.hub import HUB_POOL, HubResource, Load, MergeResult, TableSpec, held_open
from resources.warehouse import WarehouseResource

GROUP = "warehouse"

WMS = RecordShape(modified_at=lambda record: record.get("updated_at"))
FEED = RecordShape(version=None, modified_at=lambda record: record.get("occurred_at"))

RAW_WAREHOUSES = raw_table("warehouse_warehouses", "WMS warehouses (the commerce supply channels), as extracted.")
RAW_STOCK_LEVELS = raw_table("warehouse_stock_levels", "WMS stock per SKU and warehouse, as extracted.")
RAW_STOCK_MOVEMENTS = raw_table(
    "warehouse_stock_movements", "The WMS stock-movement feed (append-only), as extracted.", versioned=False
)
RAW_SUPPLIERS = raw_table("warehouse_suppliers", "WMS suppliers with lead times, as extracted.")
RAW_PURCHASE_ORDERS = raw_table("warehouse_purchase_orders", "WMS purchase orders with their lines, as extracted.")

WAREHOUSES = TableSpec(
    "core.warehouses",
    (
        ("warehouse_id", "text"),
        ("version", "bigint"),
        ("warehouse_code", "text"),
        ("name", "text"),
        ("country", "text"),
        ("city", "text"),
        ("latitude", "double"),
        ("longitude", "double"),
        ("capacity_units", "bigint"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    ("warehouse_id",),
    version_column="version",
    description="Warehouses and stores holding stock; warehouse_id is the commerce supply channel id.",
)
STOCK_LEVELS = TableSpec(
    "core.stock_levels",
    (
        ("stock_level_id", "text"),
        ("version", "bigint"),
        ("sku", "text"),
        ("warehouse_id", "text"),
        ("on_hand", "bigint"),
        ("allocated", "bigint"),
        ("available", "bigint"),
        ("updated_at", "timestamp"),
    ),
    ("stock_level_id",),
    version_column="version",
    description="Stock per SKU and warehouse as the WMS sees it: on hand, allocated to orders, available.",
)
STOCK_MOVEMENTS = TableSpec(
    "core.stock_movements",
    (
        ("movement_id", "text"),
        ("sequence", "bigint"),
        ("movement_type", "text"),
        ("sku", "text"),
        ("warehouse_id", "text"),
        ("quantity", "bigint"),
        ("reference", "text"),
        ("occurred_at", "timestamp"),
    ),
    ("movement_id",),
    description="Every stock movement (receipt, pick, adjustment, transfer), append-only; quantity is signed.",
)
SUPPLIERS = TableSpec(
    "core.suppliers",
    (
        ("supplier_id", "text"),
        ("version", "bigint"),
        ("name", "text"),
        ("country", "text"),
        ("lead_time_days", "int"),
        ("currency", "text"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    ("supplier_id",),
    version_column="version",
    description="Suppliers with their lead time in days and the currency they invoice in.",
)
PURCHASE_ORDERS = TableSpec(
    "core.purchase_orders",
    (
        ("purchase_order_id", "text"),
        ("version", "bigint"),
        ("supplier_id", "text"),
        ("warehouse_id", "text"),
        ("status", "text"),
        ("line_count", "int"),
        ("expected_at", "timestamp"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    ("purchase_order_id",),
    version_column="version",
    description="Purchase orders to suppliers, delivered to a warehouse: draft, open, (partially) received, cancelled.",
)
PURCHASE_ORDER_LINES = TableSpec(
    "core.purchase_order_lines",
    (
        ("purchase_order_id", "text"),
        ("line_id", "int"),
        ("sku", "text"),
        ("quantity_ordered", "bigint"),
        ("quantity_received", "bigint"),
        ("unit_cost_minor", "bigint"),
        ("currency", "text"),
    ),
    ("purchase_order_id", "line_id"),
    merge="replace_children",
    parent_key="purchase_order_id",
    description="Purchase order lines; unit cost in minor units with its ISO currency.",
)
SUPPLIER_OFFERS = TableSpec(
    "core.supplier_offers",
    (
        ("supplier_id", "text"),
        ("supplier_sku", "text"),
        ("sku", "text"),
        ("unit_cost_minor", "bigint"),
        ("currency", "text"),
        ("min_order_qty", "bigint"),
        ("available_to_promise", "bigint"),
        ("source_file", "text"),
        ("source_line", "int"),
        ("feed_date", "text"),
    ),
    ("supplier_id", "supplier_sku"),
    merge="replace_children",
    parent_key="supplier_id",
    description=(
        "What each supplier offers, from the nightly CSV feeds: a feed replaces every offer of the suppliers "
        "it carries. Malformed rows go to quality.quarantine."
    ),
    column_descriptions={"feed_date": "The feed's date (YYYY-MM-DD), from its file name."},
)

WAREHOUSE_CORE_TABLES = (
    WAREHOUSES,
    STOCK_LEVELS,
    STOCK_MOVEMENTS,
    SUPPLIERS,
    PURCHASE_ORDERS,
    PURCHASE_ORDER_LINES,
    SUPPLIER_OFFERS,
)


class WarehouseExtractConfig(dg.Config):
    """`full` exports everything; `incremental` reads what changed since the committed watermark."""

    mode: Literal["full", "incremental"] = "full"
    lookback_seconds: int = 120


# --- raw -> core --------------------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _rows(spec: TableSpec, documents: list[dict[str, Any]], row: Callable[[dict[str, Any]], dict[str, Any]]):
    columns = empty_columns(spec)
    for doc in documents:
        for name, value in row(doc).items():
            columns[name].append(value)
    return {spec.name: columns}


def flatten_warehouses(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    return _rows(
        WAREHOUSES,
        documents,
        lambda d: {
            "warehouse_id": d["id"],
            "version": d["version"],
            "warehouse_code": d.get("code"),
            "name": d.get("name"),
            "country": d.get("country"),
            "city": d.get("city"),
            "latitude": d.get("latitude"),
            "longitude": d.get("longitude"),
            "capacity_units": d.get("capacity_units"),
            "created_at": d.get("created_at"),
            "updated_at": d.get("updated_at"),
        },
    )


def flatten_stock_levels(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    return _rows(
        STOCK_LEVELS,
        documents,
        lambda d: {
            "stock_level_id": d["id"],
            "version": d["version"],
            "sku": d.get("sku"),
            "warehouse_id": d.get("warehouse_id"),
            "on_hand": d.get("on_hand"),
            "allocated": d.get("allocated"),
            "available": d.get("available"),
            "updated_at": d.get("updated_at"),
        },
    )


def flatten_stock_movements(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    return _rows(
        STOCK_MOVEMENTS,
        documents,
        lambda d: {
            "movement_id": d["id"],
            "sequence": d["sequence"],
            "movement_type": d.get("type"),
            "sku": d.get("sku"),
            "warehouse_id": d.get("warehouse_id"),
            "quantity": d["quantity"],
            "reference": d.get("reference"),
            "occurred_at": d.get("occurred_at"),
        },
    )


def flatten_suppliers(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    return _rows(
        SUPPLIERS,
        documents,
        lambda d: {
            "supplier_id": d["id"],
            "version": d["version"],
            "name": d.get("name"),
            "country": d.get("country"),
            "lead_time_days": d.get("lead_time_days"),
            "currency": _upper(d.get("currency")),
            "created_at": d.get("created_at"),
            "updated_at": d.get("updated_at"),
        },
    )


def flatten_purchase_orders(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    orders, lines = empty_columns(PURCHASE_ORDERS), empty_columns(PURCHASE_ORDER_LINES)
    for doc in documents:
        for name, value in (
            ("purchase_order_id", doc["id"]),
            ("version", doc["version"]),
            ("supplier_id", doc.get("supplier_id")),
            ("warehouse_id", doc.get("warehouse_id")),
            ("status", doc.get("status")),
            ("line_count", len(doc.get("lines") or [])),
            ("expected_at", doc.get("expected_at")),
            ("created_at", doc.get("created_at")),
            ("updated_at", doc.get("updated_at")),
        ):
            orders[name].append(value)
        for line in doc.get("lines") or []:
            for name, value in (
                ("purchase_order_id", doc["id"]),
                ("line_id", line["line_id"]),
                ("sku", line.get("sku")),
                ("quantity_ordered", line.get("quantity_ordered")),
                ("quantity_received", line.get("quantity_received")),
                ("unit_cost_minor", line.get("unit_cost_minor")),
                ("currency", _upper(line.get("currency"))),
            ):
                lines[name].append(value)
    return {PURCHASE_ORDERS.name: orders, PURCHASE_ORDER_LINES.name: lines}


OFFER_COLUMNS = ("supplier_id", "supplier_sku", "sku", "unit_cost", "currency", "min_order_qty", "available_to_promise")
FEED_FILE_NAME = re.compile(r"^suppliers_(\d{4}-\d{2}-\d{2})\.csv$")
# ISO 4217 minor units where they are not 2; every other currency has 2.
MINOR_UNITS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_DECIMAL = re.compile(r"^-?\d{1,15}(?:\.\d{1,9})?$")
_INTEGER = re.compile(r"^-?\d{1,15}$")
# Rows staged per Arrow batch while a file streams through.
STAGE_ROWS = 10_000


@dataclass(frozen=True)
class SupplierFileResult:
    """What loading one supplier CSV did. `error` says why the whole file was rejected; `skipped`
    that the same bytes had already landed."""

    path: Path
    feed_date: str | None
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    skipped: bool = False
    load: Load | None = None

    @property
    def rejected(self) -> bool:
        return self.error is not None


class _Rejected(Exception):
    """The whole file is refused; nothing of it lands."""


def _money(text: str, currency: str) -> tuple[int | None, str | None]:
    """(minor units, problem) from a decimal string in major units."""
    if not _DECIMAL.match(text):
        return None, f"unit_cost {text!r} is not a decimal number"
    amount = Decimal(text)
    if amount < 0:
        return None, f"unit_cost {text} is negative"
    minor = amount.scaleb(MINOR_UNITS.get(currency, 2))
    if minor != minor.to_integral_value():
        return None, f"unit_cost {text} has more decimals than {currency} allows"
    return int(minor), None


def _quantity(name: str, text: str, minimum: int) -> tuple[int | None, str | None]:
    if not _INTEGER.match(text):
        return None, f"{name} {text!r} is not a whole number"
    if int(text) < minimum:
        return None, f"{name} {text} is negative" if int(text) < 0 else f"{name} {text} is below {minimum}"
    return int(text), None


def _offer(fields: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The conformed offer of one CSV row and the row's problems (empty when it can land)."""
    if len(fields) != len(OFFER_COLUMNS):
        return {}, [f"wrong column count: expected {len(OFFER_COLUMNS)}, found {len(fields)}"]
    raw = dict(zip(OFFER_COLUMNS, (f.strip() for f in fields), strict=True))
    problems = [f"missing {c}" for c in ("supplier_id", "supplier_sku", "sku") if not raw[c]]
    currency = raw["currency"].upper()
    if currency not in ISO_4217_ACTIVE:
        problems.append(f"unknown currency {raw['currency']!r}")
    cost, problem = _money(raw["unit_cost"], currency)
    moq, moq_problem = _quantity("min_order_qty", raw["min_order_qty"], 1)
    atp, atp_problem = _quantity("available_to_promise", raw["available_to_promise"], 0)
    problems += [p for p in (problem, moq_problem, atp_problem) if p]
    offer = {
        "supplier_id": raw["supplier_id"],
        "supplier_sku": raw["supplier_sku"],
        "sku": raw["sku"],
        "unit_cost_minor": cost,
        "currency": currency,
        "min_order_qty": moq,
        "available_to_promise": atp,
    }
    return offer, problems


def load_supplier_file(path: str | Path, hub: HubResource, *, force: bool = False) -> SupplierFileResult:
    """Load one supplier CSV in one hub load: good rows into core.supplier_offers, malformed rows into
    quality.quarantine (with the line and the reason), both committed together.

    A file whose name or header is wrong, or that cannot be read as UTF-8 CSV, is rejected whole:
    nothing of it lands and `error` names the expected and found columns (or the fault). The load
    records the file's SHA-256 under sync key `core.supplier_offers:<file name>`; the same bytes are
    not loaded twice unless `force` is set.
    """
    path = Path(path)
    match = FEED_FILE_NAME.match(path.name)
    feed_date = match.group(1) if match else None
    try:
        if feed_date is None:
            raise _Rejected("the file name must be suppliers_<YYYY-MM-DD>.csv")
        try:
            date.fromisoformat(feed_date)
        except ValueError:
            raise _Rejected(f"{feed_date} in the file name is not a date") from None
        sync_key = f"{SUPPLIER_OFFERS.name}:{path.name}"
        with path.open("rb") as raw:
            digest = hashlib.file_digest(raw, "sha256").hexdigest()
        state = hub.sync_state(sync_key)
        if not force and state is not None and state.cursor == digest:
            return SupplierFileResult(path, feed_date, skipped=True)
        with path.open(newline="", encoding="utf-8-sig") as handle, hub.load(sync_key) as load:
            reader = csv.reader(handle)
            found = [c.strip() for c in next(reader, [])]
            if tuple(found) != OFFER_COLUMNS:
                raise _Rejected(
                    f"wrong header: expected columns {', '.join(OFFER_COLUMNS)}; "
                    f"found {', '.join(found) if found else 'no header (empty file)'}"
                )
            offers, quarantine = load.stage(SUPPLIER_OFFERS), load.stage(QUARANTINE)
            good, bad, seen = empty_columns(SUPPLIER_OFFERS), [], {}
            loaded = quarantined = 0
            for fields in reader:
                if not fields:
                    continue  # a blank line carries no record
                line = reader.line_num
                offer, problems = _offer(fields)
                key = (offer.get("supplier_id"), offer.get("supplier_sku"))
                if not problems and key in seen:
                    problems = [f"duplicate of line {seen[key]}: same supplier_id and supplier_sku"]
                if problems:
                    record = dict(zip(OFFER_COLUMNS, fields, strict=True)) if offer else {"values": fields}
                    bad.append(Quarantined(line, "; ".join(problems), record))
                else:
                    seen[key] = line
                    for name, value in {**offer, "source_file": path.name, "source_line": line}.items():
                        good[name].append(value)
                    good["feed_date"].append(feed_date)
                if len(good["sku"]) >= STAGE_ROWS or len(bad) >= STAGE_ROWS:
                    loaded, quarantined = loaded + len(good["sku"]), quarantined + len(bad)
                    offers.append(SUPPLIER_OFFERS.to_arrow(good))
                    quarantine.append(quarantine_rows(SUPPLIER_OFFERS.name, path.name, feed_date, bad))
                    good, bad = empty_columns(SUPPLIER_OFFERS), []
            loaded, quarantined = loaded + len(good["sku"]), quarantined + len(bad)
            offers.append(SUPPLIER_OFFERS.to_arrow(good))
            quarantine.append(quarantine_rows(SUPPLIER_OFFERS.name, path.name, feed_date, bad))
            load.advance(cursor=digest)
    except _Rejected as exc:
        return SupplierFileResult(path, feed_date, error=f"{path.name}: {exc}")
    except (UnicodeDecodeError, csv.Error) as exc:
        return SupplierFileResult(path, feed_date, error=f"{path.name}: not a readable UTF-8 CSV file: {exc}")
    return SupplierFileResult(path, feed_date, loaded, quarantined, load=load)


def _offers_materialization(hub: HubResource, results: list[SupplierFileResult]) -> dg.MaterializeResult:
    loads = [r.load for r in results if r.load is not None]
    merged = [ld.results[SUPPLIER_OFFERS.name] for ld in loads if SUPPLIER_OFFERS.name in ld.results]
    total = Load(
        sync_key=SUPPLIER_OFFERS.name,
        batch_id=loads[-1].batch_id if loads else None,
        results={
            SUPPLIER_OFFERS.name: MergeResult(
                SUPPLIER_OFFERS.name, sum(m.rows_staged for m in merged), sum(m.rows_changed for m in merged)
            )
        },
    )
    files = [
        dg.TableRecord(
            {
                "file": r.path.name,
                "skipped": r.skipped,
                "rows_loaded": r.rows_loaded,
                "rows_quarantined": r.rows_quarantined,
            }
        )
        for r in results
    ]
    return materialization(
        hub,
        SUPPLIER_OFFERS,
        total,
        files=dg.MetadataValue.table(records=files) if files else "no files in the landing directory",
        rows_quarantined=sum(r.rows_quarantined for r in results),
    )


# --- assets -------------------------------------------------------------------------------


def _raw_asset(endpoint: str, spec: TableSpec) -> dg.AssetsDefinition:
    @dg.asset(key=asset_key(spec), group_name=GROUP, pool=HUB_POOL, kinds={"api"}, description=spec.description)
    def landing(
        context: dg.AssetExecutionContext,
        config: WarehouseExtractConfig,
        warehouse: WarehouseResource,
        hub: HubResource,
    ) -> dg.MaterializeResult:
        with held_open(hub):  # one open of an embedded hub for the whole step
            state = hub.sync_state(spec.name)
            since = None
            if config.mode == "incremental" and state and state.watermark:
                since = state.watermark - timedelta(seconds=config.lookback_seconds)
                context.log.info(f"{spec.name}: records of {endpoint} updated since {since.isoformat()}")
            load = land_pages(
                context, hub, spec, warehouse.pages(endpoint, since), source=f"warehouse/{endpoint}", shape=WMS
            )
            watermark = load.watermark.isoformat() if load.watermark else None
            return materialization(hub, spec, load, mode=config.mode, watermark=watermark)

    return landing


@dg.asset(
    key=asset_key(RAW_STOCK_MOVEMENTS),
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"api"},
    description=RAW_STOCK_MOVEMENTS.description,
)
def raw_warehouse_stock_movements(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, hub: HubResource
) -> dg.MaterializeResult:
    """Reads the feed after the cursor committed last time; the new cursor commits with the data."""
    with held_open(hub):  # one open of an embedded hub for the whole step
        state = hub.sync_state(RAW_STOCK_MOVEMENTS.name)
        feed = warehouse.movement_feed(state.cursor if state else None)
        try:
            load = land_pages(
                context,
                hub,
                RAW_STOCK_MOVEMENTS,
                feed,
                source="warehouse/stock-movements",
                shape=FEED,
                cursor=lambda: feed.cursor,
            )
        except ExternalSystemError as exc:
            if exc.code != "invalid_cursor":
                raise
            raise dg.Failure(
                description=(
                    f"the WMS refused the stored feed cursor ({exc}). The feed was reset or belongs to another "
                    f"system: delete the ops.sync_state row '{RAW_STOCK_MOVEMENTS.name}' to read it again from "
                    "the start."
                )
            ) from None
        return materialization(hub, RAW_STOCK_MOVEMENTS, load, cursor=feed.cursor)


@dg.asset(
    key=asset_key(SUPPLIER_OFFERS),
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"csv"},
    description=SUPPLIER_OFFERS.description,
)
def core_supplier_offers(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, hub: HubResource
) -> dg.MaterializeResult:
    """Every CSV now in the landing directory, one atomic load per file, oldest name first.

    The files that can be read land; a file with a wrong header is rejected whole and fails the run
    after the others have landed, naming the expected and found columns.
    """
    hub.ensure_table(SUPPLIER_OFFERS)
    hub.ensure_table(QUARANTINE)
    results = []
    for path in warehouse.supplier_files():
        result = load_supplier_file(path, hub)
        if result.rejected:
            context.log.error(result.error)
        elif result.skipped:
            context.log.info(f"{path.name}: unchanged since it was loaded, skipped")
        else:
            context.log.info(
                f"{path.name}: {result.rows_loaded:,} offers loaded, {result.rows_quarantined:,} quarantined"
            )
        results.append(result)
    rejected = [r for r in results if r.rejected]
    if rejected:
        raise dg.Failure(
            description="rejected supplier files:\n" + "\n".join(r.error or "" for r in rejected),
            metadata={"rejected_files": [r.path.name for r in rejected]},
        )
    return _offers_materialization(hub, results)


_core_assets = partial(conformed_assets, system="warehouse", group=GROUP)

raw_warehouse_warehouses = _raw_asset("warehouses", RAW_WAREHOUSES)
raw_warehouse_stock_levels = _raw_asset("stock-levels", RAW_STOCK_LEVELS)
raw_warehouse_suppliers = _raw_asset("suppliers", RAW_SUPPLIERS)
raw_warehouse_purchase_orders = _raw_asset("purchase-orders", RAW_PURCHASE_ORDERS)

core_warehouses = _core_assets("core_warehouses", RAW_WAREHOUSES, (WAREHOUSES,), flatten_warehouses)
core_stock_levels = _core_assets("core_stock_levels", RAW_STOCK_LEVELS, (STOCK_LEVELS,), flatten_stock_levels)
core_stock_movements = _core_assets(
    "core_stock_movements", RAW_STOCK_MOVEMENTS, (STOCK_MOVEMENTS,), flatten_stock_movements
)
core_suppliers = _core_assets("core_suppliers", RAW_SUPPLIERS, (SUPPLIERS,), flatten_suppliers)
core_purchase_orders = _core_assets(
    "core_purchase_orders", RAW_PURCHASE_ORDERS, (PURCHASE_ORDERS, PURCHASE_ORDER_LINES), flatten_purchase_orders
)

warehouse_assets = [
    raw_warehouse_warehouses,
    raw_warehouse_stock_levels,
    raw_warehouse_stock_movements,
    raw_warehouse_suppliers,
    raw_warehouse_purchase_orders,
    core_warehouses,
    core_stock_levels,
    core_stock_movements,
    core_suppliers,
    core_purchase_orders,
    core_supplier_offers,
]
