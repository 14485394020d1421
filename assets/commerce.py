"""Commerce platform (commercetools): catalog, inventory, channels and categories, raw and core, and change events."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

import dagster as dg
import orjson
import pandas as pd
from pydantic import Field

from assets.landing import asset_key, conformed_assets, empty_columns, json_text, land_pages, materialization, raw_table
from resources.commerce import CommerceToolsResource, format_timestamp
from resources.hub import HUB_POOL, HubResource, Load, TableSpec, quoted

GROUP = "commerce"
# A deletion lands in raw as the record's last document with this field set (a tombstone), so it
# flows to core like any change and sets `deleted_at` there.
DELETED_AT = "deletedAt"
CHANGE_EVENTS_TABLE = "ops.change_events"
KEYS_SAMPLE = 20

RAW_PRODUCT_PROJECTIONS = raw_table("commerce_product_projections", "Published product projections, as extracted.")
RAW_INVENTORY_ENTRIES = raw_table("commerce_inventory_entries", "Inventory entries per SKU and supply channel.")
RAW_CHANNELS = raw_table("commerce_channels", "Channels: warehouses and stores that supply inventory.")
RAW_CATEGORIES = raw_table("commerce_categories", "Catalog categories.")

_TIMESTAMPS = (("created_at", "timestamp"), ("last_modified_at", "timestamp"))
_DELETED_AT = "When a deletion message said the source removed it; null while it exists (a soft delete)."

PRODUCTS = TableSpec(
    "core.products",
    (
        ("product_id", "text"),
        ("version", "bigint"),
        ("product_key", "text"),
        ("product_type_id", "text"),
        ("name", "json"),
        ("slug", "json"),
        ("description", "json"),
        ("brand", "text"),
        ("category_ids", "json"),
        ("variant_count", "int"),
        ("published", "bool"),
        *_TIMESTAMPS,
        ("deleted_at", "timestamp"),
    ),
    ("product_id",),
    version_column="version",
    description="One row per product. Localized names and slugs are JSON maps of locale to text.",
    column_descriptions={"deleted_at": _DELETED_AT + " Its variants and prices are kept."},
)
PRODUCT_VARIANTS = TableSpec(
    "core.product_variants",
    (
        ("product_id", "text"),
        ("variant_id", "int"),
        ("sku", "text"),
        ("variant_key", "text"),
        ("is_master", "bool"),
        ("shade", "text"),
        ("attributes", "json"),
        ("image_url", "text"),
        ("product_version", "bigint"),
    ),
    ("product_id", "variant_id"),
    merge="replace_children",
    parent_key="product_id",
    description="One row per variant (SKU) of a product.",
)
PRICES = TableSpec(
    "core.prices",
    (
        ("price_id", "text"),
        ("product_id", "text"),
        ("variant_id", "int"),
        ("sku", "text"),
        ("currency", "text"),
        ("cent_amount", "bigint"),
        ("fraction_digits", "int"),
        ("country", "text"),
        ("channel_id", "text"),
        ("valid_from", "timestamp"),
        ("valid_until", "timestamp"),
    ),
    ("price_id",),
    merge="replace_children",
    parent_key="product_id",
    description="Variant prices in minor units (cent_amount) with their ISO currency.",
)
INVENTORY_ENTRIES = TableSpec(
    "core.inventory_entries",
    (
        ("inventory_entry_id", "text"),
        ("version", "bigint"),
        ("sku", "text"),
        ("supply_channel_id", "text"),
        ("quantity_on_stock", "bigint"),
        ("available_quantity", "bigint"),
        ("restockable_in_days", "int"),
        ("expected_delivery_at", "timestamp"),
        *_TIMESTAMPS,
        ("deleted_at", "timestamp"),
    ),
    ("inventory_entry_id",),
    version_column="version",
    description="Stock per SKU and supply channel, as the commerce platform sees it.",
    column_descriptions={"deleted_at": _DELETED_AT},
)
CHANNELS = TableSpec(
    "core.channels",
    (
        ("channel_id", "text"),
        ("version", "bigint"),
        ("channel_key", "text"),
        ("roles", "json"),
        ("name", "json"),
        ("country", "text"),
        ("latitude", "double"),
        ("longitude", "double"),
        *_TIMESTAMPS,
    ),
    ("channel_id",),
    version_column="version",
    description="Supply and distribution channels (warehouses, stores) with their location.",
)
CATEGORIES = TableSpec(
    "core.categories",
    (
        ("category_id", "text"),
        ("version", "bigint"),
        ("category_key", "text"),
        ("name", "json"),
        ("slug", "json"),
        ("parent_id", "text"),
        ("order_hint", "text"),
        *_TIMESTAMPS,
    ),
    ("category_id",),
    version_column="version",
    description="The category tree; parent_id is null at the root.",
)

COMMERCE_CORE_TABLES = (PRODUCTS, PRODUCT_VARIANTS, PRICES, INVENTORY_ENTRIES, CHANNELS, CATEGORIES)


class CommerceExtractConfig(dg.Config):
    """`full` exports everything; `incremental` reads what changed since the committed watermark;
    `changes` re-fetches only the records named by the commerce change events in ops.change_events."""

    mode: Literal["full", "incremental", "changes"] = "full"
    lookback_seconds: int = 120
    upto_batch_id: int | None = Field(
        default=None,
        description="changes: apply the events committed up to this ops.change_events batch (default all).",
    )


def _reference_id(value: dict[str, Any] | None) -> str | None:
    return value.get("id") if value else None


def _attributes(variant: dict[str, Any]) -> dict[str, Any]:
    return {a["name"]: a.get("value") for a in variant.get("attributes") or []}


def flatten_products(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    """Product projections into products, one row per variant, and one row per price."""
    products, variants, prices = empty_columns(PRODUCTS), empty_columns(PRODUCT_VARIANTS), empty_columns(PRICES)
    for doc in documents:
        all_variants = [doc["masterVariant"], *(doc.get("variants") or [])]
        master_attributes = _attributes(doc["masterVariant"])
        for name, value in (
            ("product_id", doc["id"]),
            ("version", doc["version"]),
            ("product_key", doc.get("key")),
            ("product_type_id", _reference_id(doc.get("productType"))),
            ("name", json_text(doc.get("name"))),
            ("slug", json_text(doc.get("slug"))),
            ("description", json_text(doc.get("description"))),
            ("brand", master_attributes.get("brand")),
            ("category_ids", json_text([c["id"] for c in doc.get("categories") or []])),
            ("variant_count", len(all_variants)),
            ("published", doc.get("published")),
            ("created_at", doc.get("createdAt")),
            ("last_modified_at", doc.get("lastModifiedAt")),
            ("deleted_at", doc.get(DELETED_AT)),
        ):
            products[name].append(value)
        for variant in all_variants:
            attributes = _attributes(variant)
            images = variant.get("images") or [{}]
            for name, value in (
                ("product_id", doc["id"]),
                ("variant_id", variant["id"]),
                ("sku", variant.get("sku")),
                ("variant_key", variant.get("key")),
                ("is_master", variant is doc["masterVariant"]),
                ("shade", attributes.get("shade")),
                ("attributes", json_text(variant.get("attributes") or [])),
                ("image_url", images[0].get("url")),
                ("product_version", doc["version"]),
            ):
                variants[name].append(value)
            for price in variant.get("prices") or []:
                money = price["value"]
                for name, value in (
                    ("price_id", price["id"]),
                    ("product_id", doc["id"]),
                    ("variant_id", variant["id"]),
                    ("sku", variant.get("sku")),
                    ("currency", money["currencyCode"]),
                    ("cent_amount", money["centAmount"]),
                    ("fraction_digits", money.get("fractionDigits")),
                    ("country", price.get("country")),
                    ("channel_id", _reference_id(price.get("channel"))),
                    ("valid_from", price.get("validFrom")),
                    ("valid_until", price.get("validUntil")),
                ):
                    prices[name].append(value)
    return {PRODUCTS.name: products, PRODUCT_VARIANTS.name: variants, PRICES.name: prices}


def flatten_inventory(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    rows = empty_columns(INVENTORY_ENTRIES)
    for doc in documents:
        for name, value in (
            ("inventory_entry_id", doc["id"]),
            ("version", doc["version"]),
            ("sku", doc.get("sku")),
            ("supply_channel_id", _reference_id(doc.get("supplyChannel"))),
            ("quantity_on_stock", doc.get("quantityOnStock")),
            ("available_quantity", doc.get("availableQuantity")),
            ("restockable_in_days", doc.get("restockableInDays")),
            ("expected_delivery_at", doc.get("expectedDelivery")),
            ("created_at", doc.get("createdAt")),
            ("last_modified_at", doc.get("lastModifiedAt")),
            ("deleted_at", doc.get(DELETED_AT)),
        ):
            rows[name].append(value)
    return {INVENTORY_ENTRIES.name: rows}


def flatten_channels(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    rows = empty_columns(CHANNELS)
    for doc in documents:
        longitude, latitude = ((doc.get("geoLocation") or {}).get("coordinates") or [None, None])[:2]
        for name, value in (
            ("channel_id", doc["id"]),
            ("version", doc["version"]),
            ("channel_key", doc.get("key")),
            ("roles", json_text(doc.get("roles") or [])),
            ("name", json_text(doc.get("name"))),
            ("country", (doc.get("address") or {}).get("country")),
            ("latitude", latitude),
            ("longitude", longitude),
            ("created_at", doc.get("createdAt")),
            ("last_modified_at", doc.get("lastModifiedAt")),
        ):
            rows[name].append(value)
    return {CHANNELS.name: rows}


def flatten_categories(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    rows = empty_columns(CATEGORIES)
    for doc in documents:
        for name, value in (
            ("category_id", doc["id"]),
            ("version", doc["version"]),
            ("category_key", doc.get("key")),
            ("name", json_text(doc.get("name"))),
            ("slug", json_text(doc.get("slug"))),
            ("parent_id", _reference_id(doc.get("parent"))),
            ("order_hint", doc.get("orderHint")),
            ("created_at", doc.get("createdAt")),
            ("last_modified_at", doc.get("lastModifiedAt")),
        ):
            rows[name].append(value)
    return {CATEGORIES.name: rows}


def _raw_documents(spec: TableSpec, documents: Sequence[dict[str, Any]], source: str) -> Any:
    extracted_at = datetime.now(UTC)
    return spec.to_arrow(
        {
            "id": [d["id"] for d in documents],
            "version": [d["version"] for d in documents],
            "last_modified_at": [d.get("lastModifiedAt") for d in documents],
            "document": [orjson.dumps(d).decode() for d in documents],
            "_extracted_at": [extracted_at] * len(documents),
            "_source": [source] * len(documents),
        }
    )


def _stored_documents(hub: HubResource, spec: TableSpec, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The raw documents the hub holds for `ids`."""
    found: dict[str, dict[str, Any]] = {}
    if not ids or not hub.backend.table_exists(spec.name):
        return found
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        frame = hub.read_frame(
            f"SELECT id, document FROM {quoted(spec.name)} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
        )
        found.update(zip(frame["id"], map(orjson.loads, frame["document"]), strict=True))
    return found


def _tombstone(stored: dict[str, Any] | None, event: pd.Series) -> dict[str, Any] | None:
    """The raw document a deletion lands: the last known document, marked deleted, one version on."""
    payload = orjson.loads(event["payload"])
    base = stored or payload.get("currentProjection")
    if base is None and event["resource_type"] == "inventory-entry":
        base = {"id": event["resource_id"], "sku": payload.get("sku"), "supplyChannel": payload.get("supplyChannel")}
    if base is None:
        return None
    deleted_at = payload.get("createdAt") or format_timestamp(event["occurred_at"].to_pydatetime())
    announced = 0 if pd.isna(event["resource_version"]) else int(event["resource_version"])
    version = max(announced, int(base.get("version") or 0) + 1)
    return {**base, "version": version, "lastModifiedAt": deleted_at, DELETED_AT: deleted_at}


def apply_changes(
    commerce: CommerceToolsResource,
    hub: HubResource,
    spec: TableSpec,
    endpoint: str,
    resource_type: str,
    upto_batch_id: int | None,
) -> tuple[Load, dict[str, Any]]:
    """Land the current state of every `resource_type` record named by the commerce change events
    committed after this table's applied cursor, up to `upto_batch_id`, in one atomic load.

    Changed records are re-fetched by id (deleted ones are gone at the source and come back with
    their deletion); deletions land as tombstones. The applied cursor (sync key
    `apply:<raw table>`) commits with the rows, so no event is applied twice.
    """
    sync_key = f"apply:{spec.name}"
    state = hub.sync_state(sync_key)
    after = int(state.cursor) if state and state.cursor else 0
    has_events = hub.backend.table_exists(CHANGE_EVENTS_TABLE)
    if upto_batch_id is None:
        upto_batch_id = (hub.scalar(f"SELECT max(_batch_id) FROM {CHANGE_EVENTS_TABLE}") if has_events else None) or 0
    upto = max(after, upto_batch_id)
    columns = ["resource_id", "resource_type", "event_type", "resource_version", "occurred_at", "payload"]
    events = pd.DataFrame(columns=columns)
    if has_events and upto > after:
        events = hub.read_frame(
            f"SELECT {', '.join(columns)} FROM {CHANGE_EVENTS_TABLE} WHERE source = 'commerce' AND resource_type = ?"
            " AND _batch_id > ? AND _batch_id <= ? ORDER BY resource_id, sequence_number",
            [resource_type, after, upto],
        )
    deletions = events[events["event_type"].str.endswith("Deleted")].drop_duplicates("resource_id", keep="last")
    changed = sorted(set(events["resource_id"]) - set(deletions["resource_id"]))
    stored = _stored_documents(hub, spec, list(deletions["resource_id"]))
    source = f"commerce/{endpoint}"
    refetched: list[str] = []
    tombstones: list[dict[str, Any]] = []
    already_deleted: list[str] = []
    unknown: list[str] = []
    with hub.load(sync_key) as load:
        stage = load.stage(spec)
        for page in commerce.fetch_by_ids(endpoint, changed):
            stage.append(_raw_documents(spec, page, source))
            refetched += [d["id"] for d in page]
        for _, event in deletions.iterrows():
            known = stored.get(event["resource_id"])
            if known is not None and DELETED_AT in known:
                already_deleted.append(event["resource_id"])
            elif (doc := _tombstone(known, event)) is None:
                unknown.append(event["resource_id"])
            else:
                tombstones.append(doc)
        if tombstones:
            stage.append(_raw_documents(spec, tombstones, source))
        load.advance(cursor=str(upto))
    touched = [*refetched, *(d["id"] for d in tombstones)]
    return load, {
        "applied_after_batch_id": after,
        "applied_upto_batch_id": upto,
        "events_applied": len(events),
        "keys_touched": len(touched),
        "keys_refetched": len(refetched),
        "keys_deleted": len(tombstones),
        "keys_gone_at_source": len(set(changed) - set(refetched)),
        "keys_already_deleted": len(already_deleted),
        "keys_deleted_unknown": len(unknown),
        "keys_sample": dg.MetadataValue.json(sorted(touched)[:KEYS_SAMPLE]),
    }


def commerce_raw_asset(endpoint: str, spec: TableSpec, resource_type: str | None = None) -> dg.AssetsDefinition:
    """The raw landing asset of one endpoint; with a `resource_type`, it can also apply change events."""

    @dg.asset(
        key=asset_key(spec), group_name=GROUP, pool=HUB_POOL, kinds={"commercetools"}, description=spec.description
    )
    def landing(
        context: dg.AssetExecutionContext,
        config: CommerceExtractConfig,
        commerce: CommerceToolsResource,
        hub: HubResource,
    ) -> dg.MaterializeResult:
        if config.mode == "changes":
            if resource_type is None:
                raise dg.Failure(f"{spec.name}: mode 'changes' applies only to product projections and inventory")
            load, applied = apply_changes(commerce, hub, spec, endpoint, resource_type, config.upto_batch_id)
            return materialization(hub, spec, load, mode=config.mode, **applied)
        state = hub.sync_state(spec.name)
        if config.mode == "incremental" and state and state.watermark:
            since = state.watermark - timedelta(seconds=config.lookback_seconds)
            context.log.info(f"{spec.name}: records of {endpoint} changed since {since.isoformat()}")
            pages = commerce.changed_pages(endpoint, since)
        else:
            pages = commerce.export_pages(endpoint)
        load = land_pages(context, hub, spec, pages, source=f"commerce/{endpoint}")
        watermark = load.watermark.isoformat() if load.watermark else None
        return materialization(hub, spec, load, mode=config.mode, watermark=watermark)

    return landing


_core_assets = partial(conformed_assets, system="commerce", group=GROUP)

raw_commerce_product_projections = commerce_raw_asset("product-projections", RAW_PRODUCT_PROJECTIONS, "product")
raw_commerce_inventory_entries = commerce_raw_asset("inventory", RAW_INVENTORY_ENTRIES, "inventory-entry")
raw_commerce_channels = commerce_raw_asset("channels", RAW_CHANNELS)
raw_commerce_categories = commerce_raw_asset("categories", RAW_CATEGORIES)

core_catalog = _core_assets(
    "core_catalog", RAW_PRODUCT_PROJECTIONS, (PRODUCTS, PRODUCT_VARIANTS, PRICES), flatten_products
)
core_inventory_entries = _core_assets(
    "core_inventory_entries", RAW_INVENTORY_ENTRIES, (INVENTORY_ENTRIES,), flatten_inventory
)
core_channels = _core_assets("core_channels", RAW_CHANNELS, (CHANNELS,), flatten_channels)
core_categories = _core_assets("core_categories", RAW_CATEGORIES, (CATEGORIES,), flatten_categories)


commerce_assets = [
    raw_commerce_product_projections,
    raw_commerce_inventory_entries,
    raw_commerce_channels,
    raw_commerce_categories,
    core_catalog,
    core_inventory_entries,
    core_channels,
    core_categories,
]
