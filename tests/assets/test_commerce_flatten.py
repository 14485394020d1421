"""The commerce flattens (DuckDB SQL over raw documents): what each source field becomes in core."""

from datetime import UTC, datetime

import duckdb
import orjson
import pyarrow as pa
import pytest

from assets.commerce import (
    CHANNELS,
    INVENTORY_ENTRIES,
    PRICES,
    PRODUCT_VARIANTS,
    PRODUCTS,
    RAW_CHANNELS,
    RAW_INVENTORY_ENTRIES,
    RAW_PRODUCT_PROJECTIONS,
    flatten_channels,
    flatten_inventory,
    flatten_products,
)
from assets.landing import SqlFlatten, flattened_rows

CATALOG = (PRODUCTS, PRODUCT_VARIANTS, PRICES)


def batch(*documents: dict) -> pa.Table:
    return pa.table({"id": [d["id"] for d in documents], "document": [orjson.dumps(d).decode() for d in documents]})


def variant(variant_id: int, sku: str, **fields) -> dict:
    return {"id": variant_id, "sku": sku, **fields}


FULL_PRODUCT = {
    "id": "p-1",
    "version": 7,
    "key": "prod-1",
    "productType": {"typeId": "product-type", "id": "pt-1"},
    "name": {"en-US": "Rosé Lip Oil", "fr-FR": 'Huile à lèvres "rosé"'},
    "slug": {"en-US": "rose-lip-oil"},
    "categories": [{"typeId": "category", "id": "c-1"}, {"typeId": "category", "id": "c-2"}],
    "masterVariant": variant(
        1,
        "LIP-000001-01",
        key="prod-1-01",
        attributes=[
            {"name": "brand", "value": "Aurora"},
            {"name": "shade", "value": "Rosé"},
            {"name": "vegan", "value": True},
        ],
        images=[{"url": "https://img/1.jpg"}, {"url": "https://img/2.jpg"}],
        prices=[
            {"id": "pr-1", "value": {"currencyCode": "USD", "centAmount": 1499, "fractionDigits": 2}, "country": "US"},
            {
                "id": "pr-2",
                "value": {"currencyCode": "EUR", "centAmount": 1399, "fractionDigits": 2},
                "channel": {"typeId": "channel", "id": "ch-9"},
                "validFrom": "2025-01-01T00:00:00.000Z",
                "validUntil": "2025-12-31T23:59:59.999Z",
            },
        ],
    ),
    "variants": [variant(2, "LIP-000001-02", attributes=[{"name": "shade", "value": "Coral"}])],
    "published": True,
    "createdAt": "2025-07-08T11:33:04.847Z",
    "lastModifiedAt": "2025-08-10T12:49:51.012Z",
}


def test_a_product_becomes_one_product_row_a_row_per_variant_and_a_row_per_price():
    rows = {
        name: table.to_pylist()
        for name, table in flattened_rows(
            flatten_products, batch(FULL_PRODUCT), RAW_PRODUCT_PROJECTIONS, CATALOG
        ).items()
    }
    [product] = rows[PRODUCTS.name]
    assert product["product_id"] == "p-1" and product["version"] == 7 and product["product_type_id"] == "pt-1"
    assert orjson.loads(product["name"]) == FULL_PRODUCT["name"]
    assert product["description"] is None and product["deleted_at"] is None
    assert product["brand"] == "Aurora" and product["variant_count"] == 2 and product["published"] is True
    assert orjson.loads(product["category_ids"]) == ["c-1", "c-2"]
    assert product["last_modified_at"] == datetime(2025, 8, 10, 12, 49, 51, 12000, tzinfo=UTC)
    master, second = rows[PRODUCT_VARIANTS.name]
    assert (master["variant_id"], master["is_master"], master["shade"]) == (1, True, "Rosé")
    assert master["image_url"] == "https://img/1.jpg" and master["product_version"] == 7
    assert orjson.loads(master["attributes"]) == FULL_PRODUCT["masterVariant"]["attributes"]
    assert (second["variant_id"], second["is_master"], second["shade"], second["image_url"]) == (
        2,
        False,
        "Coral",
        None,
    )
    usd, eur = rows[PRICES.name]
    assert (usd["price_id"], usd["sku"], usd["currency"], usd["cent_amount"], usd["country"]) == (
        "pr-1",
        "LIP-000001-01",
        "USD",
        1499,
        "US",
    )
    assert usd["channel_id"] is None and usd["valid_from"] is None
    assert eur["channel_id"] == "ch-9" and eur["valid_until"] == datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_optional_parts_a_product_lacks_read_as_null_or_empty():
    bare = {"id": "p-2", "version": 1, "masterVariant": {"id": 1}, "deletedAt": "2025-09-01T00:00:00.000Z"}
    rows = flattened_rows(flatten_products, batch(bare), RAW_PRODUCT_PROJECTIONS, CATALOG)
    [product] = rows[PRODUCTS.name].to_pylist()
    assert product["category_ids"] == "[]" and product["variant_count"] == 1 and product["brand"] is None
    assert product["deleted_at"] == datetime(2025, 9, 1, tzinfo=UTC)
    [master] = rows[PRODUCT_VARIANTS.name].to_pylist()
    assert master["attributes"] == "[]" and master["sku"] is None and master["is_master"] is True
    assert rows[PRICES.name].num_rows == 0


def test_a_value_of_the_wrong_type_fails_the_batch_naming_the_record():
    broken = orjson.loads(orjson.dumps(FULL_PRODUCT))
    broken["id"] = "p-broken"
    broken["masterVariant"]["prices"][0]["value"]["centAmount"] = "fourteen"
    good = [{**FULL_PRODUCT, "id": f"p-{n}"} for n in range(5)]
    with pytest.raises(
        ValueError, match=r"raw.commerce_product_projections record 'p-broken' cannot be conformed.*fourteen"
    ):
        flattened_rows(flatten_products, batch(*good, broken, *good), RAW_PRODUCT_PROJECTIONS, CATALOG)


def test_inventory_entries_and_channels():
    entry = {
        "id": "ie-1",
        "version": 3,
        "sku": "LIP-000001-01",
        "supplyChannel": {"typeId": "channel", "id": "ch-1"},
        "quantityOnStock": 12,
        "availableQuantity": 10,
        "expectedDelivery": "2025-10-01T08:00:00.000Z",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "lastModifiedAt": "2025-02-01T00:00:00.000Z",
    }
    [row] = flattened_rows(flatten_inventory, batch(entry), RAW_INVENTORY_ENTRIES, (INVENTORY_ENTRIES,))[
        INVENTORY_ENTRIES.name
    ].to_pylist()
    assert (row["supply_channel_id"], row["quantity_on_stock"], row["available_quantity"]) == ("ch-1", 12, 10)
    assert row["restockable_in_days"] is None and row["expected_delivery_at"] == datetime(2025, 10, 1, 8, tzinfo=UTC)
    channel = {
        "id": "ch-1",
        "version": 2,
        "roles": ["InventorySupply"],
        "geoLocation": {"coordinates": [-73.9857, 40.7484]},
    }
    nowhere = {"id": "ch-2", "version": 1, "address": {"country": "FR"}}
    located, unlocated = flattened_rows(flatten_channels, batch(channel, nowhere), RAW_CHANNELS, (CHANNELS,))[
        CHANNELS.name
    ].to_pylist()
    assert (located["longitude"], located["latitude"], located["roles"]) == (-73.9857, 40.7484, '["InventorySupply"]')
    assert (unlocated["latitude"], unlocated["country"], unlocated["roles"]) == (None, "FR", "[]")


def test_a_batch_failing_for_no_single_document_is_not_blamed_on_one():
    """An error no document causes alone (out of memory, say) is raised as it is, naming no record."""
    whole_batch_only = SqlFlatten(
        prepare=(),
        tables={"t": "SELECT CASE WHEN (SELECT count(*) FROM documents) > 1 THEN error('batch too large') END AS x"},
    )
    with pytest.raises(duckdb.Error, match="batch too large"):
        whole_batch_only(batch(FULL_PRODUCT, {**FULL_PRODUCT, "id": "p-2"}))
