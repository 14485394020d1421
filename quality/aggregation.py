"""Expectation suites for the product experience read model (`serving.v1_product_experience`)."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import key_rules
from quality.validation import DatasetSuite, References

TABLE = "serving.v1_product_experience"


def _product_experience(refs: References) -> list[Expectation]:
    # Dense ranks: every rank lies in 1..max and there are max distinct ranks, so each of 1..max occurs.
    highest = int(next(iter(refs["highest_rank"]), 0))
    return [
        *key_rules("product_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="bestseller_rank"),
        gxe.ExpectColumnValuesToBeBetween(column="bestseller_rank", min_value=1, max_value=highest),
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="bestseller_rank", min_value=highest, max_value=highest),
        gxe.ExpectColumnValuesToNotBeNull(column="conversion_rate"),
        gxe.ExpectColumnValuesToBeBetween(column="conversion_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="views_30d", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="purchases_30d", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="variant_count", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="document"),
    ]


product_experience_suite = DatasetSuite(
    name="product_experience_suite",
    table=TABLE,
    key_columns=("product_id",),
    columns=("bestseller_rank", "conversion_rate", "views_30d", "purchases_30d", "variant_count", "document"),
    references={"highest_rank": f"SELECT max(bestseller_rank) FROM {TABLE}"},
    expectations=_product_experience,
)

AGGREGATION_SUITES = (product_experience_suite,)
