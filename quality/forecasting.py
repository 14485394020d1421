"""Expectation suites for the demand forecast and replenishment serving tables."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import key_rules
from quality.validation import DatasetSuite, References

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _demand_forecast(_: References) -> list[Expectation]:
    return [
        *key_rules("sku", "forecast_date"),
        gxe.ExpectColumnValuesToMatchRegex(column="forecast_date", regex=DATE_PATTERN),
        gxe.ExpectColumnValuesToNotBeNull(column="forecast_units"),
        gxe.ExpectColumnValuesToBeBetween(column="forecast_units", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="method"),
    ]


def _replenishment_suggestions(_: References) -> list[Expectation]:
    return [
        *key_rules("sku", "location"),
        gxe.ExpectColumnValuesToBeBetween(column="reorder_point", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="safety_stock", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="suggested_order_qty", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="lead_time_days", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="service_level", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="needs_reorder"),
    ]


demand_forecast_suite = DatasetSuite(
    name="demand_forecast_suite",
    table="serving.v1_demand_forecast",
    key_columns=("sku", "forecast_date"),
    columns=("forecast_units", "method"),
    expectations=_demand_forecast,
)

replenishment_suggestions_suite = DatasetSuite(
    name="replenishment_suggestions_suite",
    table="serving.v1_replenishment_suggestions",
    key_columns=("sku", "location"),
    columns=(
        "reorder_point",
        "safety_stock",
        "suggested_order_qty",
        "lead_time_days",
        "service_level",
        "needs_reorder",
    ),
    expectations=_replenishment_suggestions,
)

FORECASTING_SUITES: tuple[DatasetSuite, ...] = (demand_forecast_suite, replenishment_suggestions_suite)
