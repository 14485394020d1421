"""Commerce platform (commercetools): catalog, inventory, channels and categories, raw and core, and change events."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

import dagster as dg
import orjson
import pandas as pd
from pydantic import Field

from assets.landing import (
    JSON,
    TEXT,
    SqlFlatten,
    asset_key,
    conformed_assets,
    json_fields,
    land_json_pages,
    land_pages,
    materialization,
    raw_table,
)
from resources.commerce import CommerceToolsResource, format_timestamp
from resources.hub import HUB_POOL, HubResource, Load, TableSpec, held_open, quoted

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


# What the flatten reads of each document. Scalars are read as text and cast in the SELECT, so a
# value of the wrong type fails the batch, naming the record, instead of turning null.
_PRICE = {
    "id": TEXT,
    "value": {"currencyCode": TEXT, "centAmount": TEXT, "fractionDigits": TEXT},
    "country": TEXT,
    "channel": {"id": TEXT},
    "validFrom": TEXT,
    "validUntil": TEXT,
}
_VARIANT = {"id": TEXT, "sku": TEXT, "key": TEXT, "attributes": JSON, "images": [{"url": TEXT}], "prices": [_PRICE]}
_PRODUCT = {
    "id": TEXT,
    "version": TEXT,
    "key": TEXT,
    "productType": {"id": TEXT},
    "name": JSON,
    "slug": JSON,
    "description": JSON,
    "categories": [{"id": TEXT}],
    "masterVariant": _VARIANT,
    "variants": [_VARIANT],
    "published": TEXT,
    "createdAt": TEXT,
    "lastModifiedAt": TEXT,
    DELETED_AT: TEXT,
}


def _attribute(attributes: str, name: str) -> str:
    """The value, as text, of the named attribute in a variant's attribute list (the last, if repeated)."""
    pairs = f"CAST({attributes} AS STRUCT(name VARCHAR, value JSON)[])"
    return f"list_filter({pairs}, lambda a: a.name = '{name}')[-1].value ->> '$'"


_TIMES = "CAST(p.createdAt AS TIMESTAMPTZ) AS created_at, CAST(p.lastModifiedAt AS TIMESTAMPTZ) AS last_modified_at"

flatten_products = SqlFlatten(
    prepare=(
        f"CREATE TEMP TABLE products AS SELECT row_number() OVER () AS n, {json_fields(_PRODUCT)} AS p FROM documents",
        """CREATE TEMP TABLE variants AS
            SELECT n, p.id AS product_id, CAST(p.version AS BIGINT) AS product_version,
                unnest(variants) AS v, generate_subscripts(variants, 1) AS position
            FROM (SELECT n, p, list_prepend(p.masterVariant, coalesce(p.variants, [])) AS variants FROM products)""",
    ),
    tables={
        PRODUCTS.name: f"""
            SELECT p.id AS product_id, CAST(p.version AS BIGINT) AS version, p.key AS product_key,
                p.productType.id AS product_type_id, p.name AS name, p.slug AS slug, p.description AS description,
                {_attribute("p.masterVariant.attributes", "brand")} AS brand,
                to_json(list_transform(coalesce(p.categories, []), lambda c: c.id)) AS category_ids,
                1 + len(coalesce(p.variants, [])) AS variant_count, CAST(p.published AS BOOLEAN) AS published,
                {_TIMES}, CAST(p.{DELETED_AT} AS TIMESTAMPTZ) AS deleted_at
            FROM products ORDER BY n""",
        PRODUCT_VARIANTS.name: f"""
            SELECT product_id, CAST(v.id AS INTEGER) AS variant_id, v.sku AS sku, v.key AS variant_key,
                position = 1 AS is_master, {_attribute("v.attributes", "shade")} AS shade,
                coalesce(v.attributes, '[]') AS attributes, v.images[1].url AS image_url, product_version
            FROM variants ORDER BY n, position""",
        PRICES.name: """
            SELECT price.id AS price_id, product_id, CAST(v.id AS INTEGER) AS variant_id, v.sku AS sku,
                price.value.currencyCode AS currency, CAST(price.value.centAmount AS BIGINT) AS cent_amount,
                CAST(price.value.fractionDigits AS INTEGER) AS fraction_digits, price.country AS country,
                price.channel.id AS channel_id, CAST(price.validFrom AS TIMESTAMPTZ) AS valid_from,
                CAST(price.validUntil AS TIMESTAMPTZ) AS valid_until
            FROM (SELECT n, position, product_id, v, unnest(v.prices) AS price, generate_subscripts(v.prices, 1) AS k
                  FROM variants)
            ORDER BY n, position, k""",
    },
    # A batch's parse and unnest take memory outside DuckDB's accounting, about 100 MB per 1,000 product
    # documents in flight: 1,000 rather than 2,000 lowers `core_catalog`'s peak by 80 MB for 0.2 s.
    batch_rows=1_000,
)

_INVENTORY_ENTRY = {
    "id": TEXT,
    "version": TEXT,
    "sku": TEXT,
    "supplyChannel": {"id": TEXT},
    "quantityOnStock": TEXT,
    "availableQuantity": TEXT,
    "restockableInDays": TEXT,
    "expectedDelivery": TEXT,
    "createdAt": TEXT,
    "lastModifiedAt": TEXT,
    DELETED_AT: TEXT,
}
flatten_inventory = SqlFlatten(
    prepare=(),
    tables={
        INVENTORY_ENTRIES.name: f"""
            SELECT p.id AS inventory_entry_id, CAST(p.version AS BIGINT) AS version, p.sku AS sku,
                p.supplyChannel.id AS supply_channel_id, CAST(p.quantityOnStock AS BIGINT) AS quantity_on_stock,
                CAST(p.availableQuantity AS BIGINT) AS available_quantity,
                CAST(p.restockableInDays AS INTEGER) AS restockable_in_days,
                CAST(p.expectedDelivery AS TIMESTAMPTZ) AS expected_delivery_at,
                {_TIMES}, CAST(p.{DELETED_AT} AS TIMESTAMPTZ) AS deleted_at
            FROM (SELECT {json_fields(_INVENTORY_ENTRY)} AS p FROM documents)"""
    },
    batch_rows=20_000,  # small documents: 20,000 are about 6 MB
)

_CHANNEL = {
    "id": TEXT,
    "version": TEXT,
    "key": TEXT,
    "roles": JSON,
    "name": JSON,
    "address": {"country": TEXT},
    "geoLocation": {"coordinates": [TEXT]},
    "createdAt": TEXT,
    "lastModifiedAt": TEXT,
}
flatten_channels = SqlFlatten(
    prepare=(),
    tables={
        CHANNELS.name: f"""
            SELECT p.id AS channel_id, CAST(p.version AS BIGINT) AS version, p.key AS channel_key,
                coalesce(p.roles, '[]') AS roles, p.name AS name, p.address.country AS country,
                CAST(p.geoLocation.coordinates[2] AS DOUBLE) AS latitude,
                CAST(p.geoLocation.coordinates[1] AS DOUBLE) AS longitude, {_TIMES}
            FROM (SELECT {json_fields(_CHANNEL)} AS p FROM documents)"""
    },
)

_CATEGORY = {
    "id": TEXT,
    "version": TEXT,
    "key": TEXT,
    "name": JSON,
    "slug": JSON,
    "parent": {"id": TEXT},
    "orderHint": TEXT,
    "createdAt": TEXT,
    "lastModifiedAt": TEXT,
}
flatten_categories = SqlFlatten(
    prepare=(),
    tables={
        CATEGORIES.name: f"""
            SELECT p.id AS category_id, CAST(p.version AS BIGINT) AS version, p.key AS category_key,
                p.name AS name, p.slug AS slug, p.parent.id AS parent_id, p.orderHint AS order_hint, {_TIMES}
            FROM (SELECT {json_fields(_CATEGORY)} AS p FROM documents)"""
    },
)


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
        with held_open(hub):  # one open of an embedded hub for the whole step, as a conform does
            return _landed(context, config, commerce, hub, endpoint, spec, resource_type)

    return landing


def _landed(
    context: dg.AssetExecutionContext,
    config: CommerceExtractConfig,
    commerce: CommerceToolsResource,
    hub: HubResource,
    endpoint: str,
    spec: TableSpec,
    resource_type: str | None,
) -> dg.MaterializeResult:
    """Land one endpoint's records as `config.mode` says, and report the raw table."""
    if config.mode == "changes":
        if resource_type is None:
            raise dg.Failure(f"{spec.name}: mode 'changes' applies only to product projections and inventory")
        load, applied = apply_changes(commerce, hub, spec, endpoint, resource_type, config.upto_batch_id)
        return materialization(hub, spec, load, mode=config.mode, **applied)
    state = hub.sync_state(spec.name)
    source = f"commerce/{endpoint}"
    if config.mode == "incremental" and state and state.watermark:
        since = state.watermark - timedelta(seconds=config.lookback_seconds)
        context.log.info(f"{spec.name}: records of {endpoint} changed since {since.isoformat()}")
        load = land_pages(context, hub, spec, commerce.changed_pages(endpoint, since), source)
    else:  # a full export lands its pages as JSON text: DuckDB reads them in C
        load = land_json_pages(context, hub, spec, commerce.export_bodies(endpoint), source)
    watermark = load.watermark.isoformat() if load.watermark else None
    return materialization(hub, spec, load, mode=config.mode, watermark=watermark)


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
