"""Expectation suites for commerce orders, order lines and customers in the hub's `core` schema."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import currencies, key_rules, non_empty
from quality.config import QualityRules
from quality.validation import DatasetSuite, References

# commercetools enumerations
ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
PAYMENT_STATES = ("BalanceDue", "Failed", "Pending", "CreditOwed", "Paid")
SHIPMENT_STATES = ("Shipped", "Delivered", "Ready", "Pending", "Delayed", "Partial", "Backorder")
# HMAC-SHA-256 hex digest (see resources/pii.py)
SHA256_HEX = r"^[0-9a-f]{64}$"


def _orders(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("order_id"), gxe.ExpectColumnValuesToBeUnique(column="order_number")]


def _order_rows(rules: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="order_number"),
        gxe.ExpectColumnValuesToBeBetween(column="total_cent_amount", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="total_net_cent_amount", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="total_gross_cent_amount", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies(rules)),
        gxe.ExpectColumnValuesToBeInSet(column="order_state", value_set=list(ORDER_STATES)),
        gxe.ExpectColumnValuesToBeInSet(column="payment_state", value_set=list(PAYMENT_STATES)),
        gxe.ExpectColumnValuesToBeInSet(column="shipment_state", value_set=list(SHIPMENT_STATES)),
    ]


def _order_lines(refs: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("order_id", "line_item_id"),
        gxe.ExpectColumnValuesToBeInSet(column="sku", value_set=list(refs["variant_skus"])),
    ]


def _order_line_rows(rules: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="sku"),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="unit_cent_amount", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies(rules)),
    ]


def _customers(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("customer_id")]


def _customer_rows(_: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="email_hash"),
        gxe.ExpectColumnValuesToMatchRegex(column="email_hash", regex=SHA256_HEX),
    ]


orders_suite = DatasetSuite(
    name="orders_suite",
    table="core.orders",
    key_columns=("order_id",),
    columns=(
        "order_number",
        "currency",
        "total_cent_amount",
        "total_net_cent_amount",
        "total_gross_cent_amount",
        "order_state",
        "payment_state",
        "shipment_state",
    ),
    expectations=_orders,
    row_rules=_order_rows,
)

order_lines_suite = DatasetSuite(
    name="order_lines_suite",
    table="core.order_lines",
    key_columns=("order_id", "line_item_id", "sku"),
    columns=("quantity", "unit_cent_amount", "currency"),
    references={"variant_skus": "SELECT DISTINCT sku FROM core.product_variants WHERE sku IS NOT NULL"},
    depends_on=("core.product_variants",),
    expectations=_order_lines,
    row_rules=_order_line_rows,
)

customers_suite = DatasetSuite(
    name="customers_suite",
    table="core.customers",
    key_columns=("customer_id",),
    columns=("email_hash",),
    expectations=_customers,
    row_rules=_customer_rows,
)

ORDERS_SUITES: tuple[DatasetSuite, ...] = (orders_suite, order_lines_suite, customers_suite)
