"""Expectation suites for the warehouse datasets in the hub's `core` schema."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import currencies, key_rules, non_empty
from quality.config import QualityRules
from quality.reference import LATITUDE_RANGE, LONGITUDE_RANGE, SKU_PATTERN
from quality.validation import DatasetSuite, References

MOVEMENT_TYPES = ("receipt", "pick", "adjustment", "transfer")
PURCHASE_ORDER_STATUSES = ("draft", "open", "partially_received", "received", "cancelled")

VARIANT_SKUS = "SELECT DISTINCT sku FROM core.product_variants WHERE sku IS NOT NULL"
WAREHOUSE_IDS = "SELECT warehouse_id FROM core.warehouses"
SUPPLIER_IDS = "SELECT supplier_id FROM core.suppliers"


def _currency(rules: QualityRules) -> Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies(rules))


def _warehouses(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("warehouse_id"), gxe.ExpectColumnValuesToBeUnique(column="warehouse_code")]


def _warehouse_rows(_: QualityRules) -> list[Expectation]:
    lat_min, lat_max = LATITUDE_RANGE
    lon_min, lon_max = LONGITUDE_RANGE
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="country"),
        gxe.ExpectColumnValuesToBeBetween(column="latitude", min_value=lat_min, max_value=lat_max),
        gxe.ExpectColumnValuesToBeBetween(column="longitude", min_value=lon_min, max_value=lon_max),
        gxe.ExpectColumnValuesToBeBetween(column="capacity_units", min_value=0),
    ]


def _stock_levels(refs: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("stock_level_id"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["sku", "warehouse_id"]),
        gxe.ExpectColumnValuesToBeInSet(column="sku", value_set=list(refs["variant_skus"])),
        gxe.ExpectColumnValuesToBeInSet(column="warehouse_id", value_set=list(refs["warehouse_ids"])),
    ]


def _stock_level_rows(_: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(column="on_hand", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="available", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="on_hand", column_B="available", or_equal=True),
    ]


def _stock_movements(refs: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("movement_id"),
        gxe.ExpectColumnValuesToBeUnique(column="sequence"),
        gxe.ExpectColumnValuesToBeInSet(column="warehouse_id", value_set=list(refs["warehouse_ids"])),
    ]


def _stock_movement_rows(_: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(column="movement_type", value_set=list(MOVEMENT_TYPES)),
        gxe.ExpectColumnValuesToNotBeNull(column="quantity"),
        gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=SKU_PATTERN),
    ]


def _suppliers(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("supplier_id")]


def _supplier_rows(rules: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="lead_time_days"),
        gxe.ExpectColumnValuesToBeBetween(column="lead_time_days", min_value=0),
        _currency(rules),
    ]


def _purchase_orders(refs: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("purchase_order_id"),
        gxe.ExpectColumnValuesToBeInSet(column="supplier_id", value_set=list(refs["supplier_ids"])),
        gxe.ExpectColumnValuesToBeInSet(column="warehouse_id", value_set=list(refs["warehouse_ids"])),
    ]


def _purchase_order_rows(_: QualityRules) -> list[Expectation]:
    return [gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(PURCHASE_ORDER_STATUSES))]


def _purchase_order_lines(refs: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("purchase_order_id", "line_id"),
        gxe.ExpectColumnValuesToBeInSet(column="sku", value_set=list(refs["variant_skus"])),
    ]


def _purchase_order_line_rows(rules: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(column="quantity_ordered", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="quantity_received", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="unit_cost_minor"),
        gxe.ExpectColumnValuesToBeBetween(column="unit_cost_minor", min_value=0),
        _currency(rules),
    ]


def _supplier_offers(refs: References) -> list[Expectation]:
    return [
        *key_rules("supplier_id", "supplier_sku"),
        gxe.ExpectColumnValuesToNotBeNull(column="unit_cost_minor"),
        gxe.ExpectColumnValuesToBeBetween(column="unit_cost_minor", min_value=0),
        _currency(QualityRules()),
        gxe.ExpectColumnValuesToBeBetween(column="min_order_qty", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="available_to_promise", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="supplier_id", value_set=list(refs["supplier_ids"])),
        gxe.ExpectColumnValuesToBeInSet(column="sku", value_set=list(refs["variant_skus"])),
    ]


warehouses_suite = DatasetSuite(
    name="warehouses_suite",
    table="core.warehouses",
    key_columns=("warehouse_id",),
    columns=("warehouse_id", "warehouse_code", "country", "latitude", "longitude", "capacity_units"),
    expectations=_warehouses,
    row_rules=_warehouse_rows,
)

stock_levels_suite = DatasetSuite(
    name="stock_levels_suite",
    table="core.stock_levels",
    key_columns=("stock_level_id", "sku", "warehouse_id"),
    columns=("stock_level_id", "sku", "warehouse_id", "on_hand", "available"),
    references={"variant_skus": VARIANT_SKUS, "warehouse_ids": WAREHOUSE_IDS},
    depends_on=("core.product_variants", "core.warehouses"),
    expectations=_stock_levels,
    row_rules=_stock_level_rows,
)

stock_movements_suite = DatasetSuite(
    name="stock_movements_suite",
    table="core.stock_movements",
    key_columns=("movement_id", "sequence"),
    columns=("movement_id", "sequence", "movement_type", "sku", "warehouse_id", "quantity"),
    references={"warehouse_ids": WAREHOUSE_IDS},
    depends_on=("core.warehouses",),
    expectations=_stock_movements,
    row_rules=_stock_movement_rows,
)

suppliers_suite = DatasetSuite(
    name="suppliers_suite",
    table="core.suppliers",
    key_columns=("supplier_id",),
    columns=("supplier_id", "lead_time_days", "currency"),
    expectations=_suppliers,
    row_rules=_supplier_rows,
)

purchase_orders_suite = DatasetSuite(
    name="purchase_orders_suite",
    table="core.purchase_orders",
    key_columns=("purchase_order_id",),
    columns=("purchase_order_id", "status", "supplier_id", "warehouse_id"),
    references={"supplier_ids": SUPPLIER_IDS, "warehouse_ids": WAREHOUSE_IDS},
    depends_on=("core.suppliers", "core.warehouses"),
    expectations=_purchase_orders,
    row_rules=_purchase_order_rows,
)

purchase_order_lines_suite = DatasetSuite(
    name="purchase_order_lines_suite",
    table="core.purchase_order_lines",
    key_columns=("purchase_order_id", "line_id", "sku"),
    columns=(
        "purchase_order_id",
        "line_id",
        "sku",
        "quantity_ordered",
        "quantity_received",
        "unit_cost_minor",
        "currency",
    ),
    references={"variant_skus": VARIANT_SKUS},
    depends_on=("core.product_variants",),
    expectations=_purchase_order_lines,
    row_rules=_purchase_order_line_rows,
)

supplier_offers_suite = DatasetSuite(
    name="supplier_offers_suite",
    table="core.supplier_offers",
    key_columns=("supplier_id", "supplier_sku", "sku"),
    columns=(
        "supplier_id",
        "supplier_sku",
        "sku",
        "unit_cost_minor",
        "currency",
        "min_order_qty",
        "available_to_promise",
    ),
    references={"supplier_ids": SUPPLIER_IDS, "variant_skus": VARIANT_SKUS},
    depends_on=("core.suppliers", "core.product_variants"),
    expectations=_supplier_offers,
)

WAREHOUSE_SUITES: tuple[DatasetSuite, ...] = (
    warehouses_suite,
    stock_levels_suite,
    stock_movements_suite,
    suppliers_suite,
    purchase_orders_suite,
    purchase_order_lines_suite,
    supplier_offers_suite,
)
