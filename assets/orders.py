"""Commerce orders and customers (commercetools): raw documents, then core rows with personal data hashed.

`raw` keeps every document whole, emails and names included; `core` keeps only a salted hash of
the email and the country (see docs/governance.md). The hash salt comes from the `pii` resource.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from assets.commerce import GROUP, commerce_raw_asset
from assets.landing import (
    asset_key,
    batch_check_specs,
    conform_and_check,
    empty_columns,
    naming_bad_records,
    raw_table,
)
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.pii import PiiHashResource

RAW_ORDERS = raw_table("commerce_orders", "Orders as extracted (customer emails included: personal data).")
RAW_CUSTOMERS = raw_table("commerce_customers", "Customers as extracted (emails and names: personal data).")

_TIMESTAMPS = (("created_at", "timestamp"), ("last_modified_at", "timestamp"))

ORDERS = TableSpec(
    "core.orders",
    (
        ("order_id", "text"),
        ("version", "bigint"),
        ("order_number", "text"),
        ("customer_id", "text"),
        ("customer_email_hash", "text"),
        ("order_state", "text"),
        ("payment_state", "text"),
        ("shipment_state", "text"),
        ("currency", "text"),
        ("total_cent_amount", "bigint"),
        ("total_net_cent_amount", "bigint"),
        ("total_gross_cent_amount", "bigint"),
        ("line_count", "int"),
        ("country", "text"),
        *_TIMESTAMPS,
    ),
    ("order_id",),
    version_column="version",
    description="One row per order; amounts in minor units. Guest orders have no customer_id.",
    column_descriptions={"customer_email_hash": "Salted hash of the lower-cased order email (PII_HASH_SALT)."},
)
ORDER_LINES = TableSpec(
    "core.order_lines",
    (
        ("order_id", "text"),
        ("line_item_id", "text"),
        ("product_id", "text"),
        ("sku", "text"),
        ("quantity", "bigint"),
        ("unit_cent_amount", "bigint"),
        ("total_cent_amount", "bigint"),
        ("currency", "text"),
    ),
    ("order_id", "line_item_id"),
    merge="replace_children",
    parent_key="order_id",
    description="One row per order line: the SKU sold, its quantity and prices in minor units.",
)
CUSTOMERS = TableSpec(
    "core.customers",
    (
        ("customer_id", "text"),
        ("version", "bigint"),
        ("email_hash", "text"),
        ("country", "text"),
        *_TIMESTAMPS,
    ),
    ("customer_id",),
    version_column="version",
    description="One row per customer, pseudonymised: no email or name, only a salted email hash and the country.",
    column_descriptions={"email_hash": "HMAC-SHA-256 of the lower-cased email, keyed by PII_HASH_SALT."},
)

ORDERS_CORE_TABLES = (ORDERS, ORDER_LINES, CUSTOMERS)

Hasher = Callable[[str | None], str | None]


def _cents(money: dict[str, Any] | None) -> int | None:
    return money.get("centAmount") if money else None


def flatten_orders(documents: list[dict[str, Any]], hash_email: Hasher) -> dict[str, dict[str, list]]:
    """Orders into one row each and one row per line item."""
    orders, lines = empty_columns(ORDERS), empty_columns(ORDER_LINES)
    for doc in documents:
        total = doc["totalPrice"]
        taxed = doc.get("taxedPrice") or {}
        for name, value in (
            ("order_id", doc["id"]),
            ("version", doc["version"]),
            ("order_number", doc.get("orderNumber")),
            ("customer_id", doc.get("customerId")),
            ("customer_email_hash", hash_email(doc.get("customerEmail"))),
            ("order_state", doc.get("orderState")),
            ("payment_state", doc.get("paymentState")),
            ("shipment_state", doc.get("shipmentState")),
            ("currency", total["currencyCode"]),
            ("total_cent_amount", total["centAmount"]),
            ("total_net_cent_amount", _cents(taxed.get("totalNet"))),
            ("total_gross_cent_amount", _cents(taxed.get("totalGross"))),
            ("line_count", len(doc["lineItems"])),
            ("country", doc.get("country") or (doc.get("shippingAddress") or {}).get("country")),
            ("created_at", doc.get("createdAt")),
            ("last_modified_at", doc.get("lastModifiedAt")),
        ):
            orders[name].append(value)
        for line in doc["lineItems"]:
            unit = line["price"]["value"]
            for name, value in (
                ("order_id", doc["id"]),
                ("line_item_id", line["id"]),
                ("product_id", line.get("productId")),
                ("sku", line["variant"].get("sku")),
                ("quantity", line["quantity"]),
                ("unit_cent_amount", unit["centAmount"]),
                ("total_cent_amount", _cents(line.get("totalPrice"))),
                ("currency", unit["currencyCode"]),
            ):
                lines[name].append(value)
    return {ORDERS.name: orders, ORDER_LINES.name: lines}


def flatten_customers(documents: list[dict[str, Any]], hash_email: Hasher) -> dict[str, dict[str, list]]:
    """Customers without their personal fields: the email becomes a salted hash; names are dropped."""
    rows = empty_columns(CUSTOMERS)
    for doc in documents:
        addresses = doc.get("addresses") or [{}]
        for name, value in (
            ("customer_id", doc["id"]),
            ("version", doc["version"]),
            ("email_hash", hash_email(doc.get("email"))),
            ("country", addresses[0].get("country")),
            ("created_at", doc.get("createdAt")),
            ("last_modified_at", doc.get("lastModifiedAt")),
        ):
            rows[name].append(value)
    return {CUSTOMERS.name: rows}


def _pseudonymised_assets(
    name: str,
    raw: TableSpec,
    targets: tuple[TableSpec, ...],
    flatten: Callable[[list[dict[str, Any]], Hasher], dict[str, dict[str, list]]],
) -> dg.AssetsDefinition:
    """Core assets whose flatten hashes personal values with the `pii` resource's salt."""
    specs = [
        dg.AssetSpec(asset_key(t), deps=[asset_key(raw)], group_name=GROUP, description=t.description, kinds={"python"})
        for t in targets
    ]

    @dg.multi_asset(name=name, specs=specs, check_specs=batch_check_specs(targets), pool=HUB_POOL)
    def conformed(context: dg.AssetExecutionContext, hub: HubResource, pii: PiiHashResource):
        flatten_hashed = naming_bad_records("commerce", lambda documents: flatten(documents, pii.hash_email))
        yield from conform_and_check(hub, raw, targets, flatten_hashed, context.run_id)

    return conformed


raw_commerce_orders = commerce_raw_asset("orders", RAW_ORDERS)
raw_commerce_customers = commerce_raw_asset("customers", RAW_CUSTOMERS)
core_orders = _pseudonymised_assets("core_orders", RAW_ORDERS, (ORDERS, ORDER_LINES), flatten_orders)
core_customers = _pseudonymised_assets("core_customers", RAW_CUSTOMERS, (CUSTOMERS,), flatten_customers)

orders_assets = [raw_commerce_orders, raw_commerce_customers, core_orders, core_customers]
