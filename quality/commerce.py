"""Expectation suites for the commerce datasets in the hub's `core` schema."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.config import QualityRules
from quality.reference import (
    ISO_4217_ACTIVE,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    MAX_FRACTION_DIGITS,
    MIN_FRACTION_DIGITS,
    SKU_PATTERN,
)
from quality.validation import DatasetSuite, References


def non_empty() -> Expectation:
    """An empty core table passes every per-row rule; this makes it fail loudly instead."""
    return gxe.ExpectTableRowCountToBeBetween(min_value=1)


def key_rules(*columns: str) -> list[Expectation]:
    """Key columns are never null and unique (compound when there is more than one)."""
    rules: list[Expectation] = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]
    if len(columns) == 1:
        rules.append(gxe.ExpectColumnValuesToBeUnique(column=columns[0]))
    else:
        rules.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns)))
    return rules


def _products(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("product_id")]


def _product_variants(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("product_id", "variant_id"), gxe.ExpectColumnValuesToBeUnique(column="sku")]


def _product_variant_rows(_: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="sku"),
        gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=SKU_PATTERN),
    ]


def currencies(rules: QualityRules) -> list[str]:
    """ISO 4217 active codes plus the rules' `quality.extra_currencies`."""
    return sorted(ISO_4217_ACTIVE | set(rules.extra_currencies))


def _prices(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("price_id")]


def _price_rows(rules: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="cent_amount"),
        gxe.ExpectColumnValuesToBeBetween(column="cent_amount", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies(rules)),
        gxe.ExpectColumnValuesToBeBetween(
            column="fraction_digits", min_value=MIN_FRACTION_DIGITS, max_value=MAX_FRACTION_DIGITS
        ),
    ]


def _inventory_entries(refs: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("inventory_entry_id"),
        gxe.ExpectColumnValuesToBeInSet(column="sku", value_set=list(refs["variant_skus"])),
    ]


def _inventory_entry_rows(_: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="sku"),
        gxe.ExpectColumnValuesToBeBetween(column="quantity_on_stock", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="available_quantity", min_value=0),
    ]


def _channels(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("channel_id")]


def _channel_rows(_: QualityRules) -> list[Expectation]:
    lat_min, lat_max = LATITUDE_RANGE
    lon_min, lon_max = LONGITUDE_RANGE
    return [
        gxe.ExpectColumnValuesToBeBetween(column="latitude", min_value=lat_min, max_value=lat_max),
        gxe.ExpectColumnValuesToBeBetween(column="longitude", min_value=lon_min, max_value=lon_max),
    ]


def _categories(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("category_id")]


products_suite = DatasetSuite(
    name="products_suite",
    table="core.products",
    key_columns=("product_id",),
    columns=("product_id",),
    expectations=_products,
)

product_variants_suite = DatasetSuite(
    name="product_variants_suite",
    table="core.product_variants",
    key_columns=("product_id", "variant_id", "sku"),
    columns=("product_id", "variant_id", "sku"),
    expectations=_product_variants,
    row_rules=_product_variant_rows,
)

prices_suite = DatasetSuite(
    name="prices_suite",
    table="core.prices",
    key_columns=("price_id", "sku"),
    columns=("price_id", "sku", "currency", "cent_amount", "fraction_digits"),
    expectations=_prices,
    row_rules=_price_rows,
)

inventory_entries_suite = DatasetSuite(
    name="inventory_entries_suite",
    table="core.inventory_entries",
    key_columns=("inventory_entry_id", "sku"),
    columns=("inventory_entry_id", "sku", "quantity_on_stock", "available_quantity"),
    references={
        "variant_skus": "SELECT DISTINCT sku FROM core.product_variants WHERE sku IS NOT NULL",
    },
    depends_on=("core.product_variants",),
    expectations=_inventory_entries,
    row_rules=_inventory_entry_rows,
)

channels_suite = DatasetSuite(
    name="channels_suite",
    table="core.channels",
    key_columns=("channel_id",),
    columns=("channel_id", "latitude", "longitude"),
    expectations=_channels,
    row_rules=_channel_rows,
)

categories_suite = DatasetSuite(
    name="categories_suite",
    table="core.categories",
    key_columns=("category_id",),
    columns=("category_id",),
    expectations=_categories,
)

COMMERCE_SUITES: tuple[DatasetSuite, ...] = (
    products_suite,
    product_variants_suite,
    prices_suite,
    inventory_entries_suite,
    channels_suite,
    categories_suite,
)
