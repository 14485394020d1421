"""Expectation suites for the analytics datasets in the hub's `core` schema."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import key_rules
from quality.reference import ISO_4217_ACTIVE
from quality.validation import DatasetSuite, References

ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
COUNTS = ("items_viewed", "items_added_to_cart", "items_purchased")


def _product_daily_metrics(refs: References) -> list[Expectation]:
    """Keys unique, counts and revenue never negative, a funnel that narrows, SKUs from the catalog.

    No row-count floor: a day with no views has no rows, so an empty table can be right.
    """
    return [
        *key_rules("metric_date", "sku"),
        gxe.ExpectColumnValuesToMatchRegex(column="metric_date", regex=ISO_DATE_PATTERN),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in (*COUNTS, "item_revenue_minor", "currency")),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in (*COUNTS, "item_revenue_minor")),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="items_viewed", column_B="items_added_to_cart", or_equal=True
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="items_added_to_cart", column_B="items_purchased", or_equal=True
        ),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(ISO_4217_ACTIVE)),
        gxe.ExpectColumnValuesToBeInSet(column="sku", value_set=list(refs["variant_skus"])),
    ]


product_daily_metrics_suite = DatasetSuite(
    name="product_daily_metrics_suite",
    table="core.product_daily_metrics",
    key_columns=("metric_date", "sku"),
    columns=(*COUNTS, "item_revenue_minor", "currency"),
    references={
        "variant_skus": "SELECT DISTINCT sku FROM core.product_variants WHERE sku IS NOT NULL",
    },
    depends_on=("core.product_variants",),
    expectations=_product_daily_metrics,
)

ANALYTICS_SUITES: tuple[DatasetSuite, ...] = (product_daily_metrics_suite,)
