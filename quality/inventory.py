"""Expectation suites for the reconciled inventory, its conflicts and the availability read model."""

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import key_rules
from quality.validation import DatasetSuite, References

FIELDS = ("on_hand", "available")
SOURCES = ("warehouse", "commerce")


def _positions(_: References) -> list[Expectation]:
    return [
        *key_rules("sku", "location_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="available_quantity"),
        gxe.ExpectColumnValuesToBeBetween(column="available_quantity", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="on_hand", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="on_hand", column_B="available_quantity", or_equal=True, ignore_row_if="either_value_is_missing"
        ),
        gxe.ExpectColumnValuesToBeInSet(column="on_hand_source", value_set=list(SOURCES)),
        gxe.ExpectColumnValuesToBeInSet(column="available_source", value_set=list(SOURCES)),
    ]


def _conflicts(_: References) -> list[Expectation]:
    return [
        *key_rules("sku", "location_id", "field"),
        gxe.ExpectColumnValuesToBeInSet(column="field", value_set=list(FIELDS)),
        gxe.ExpectColumnValuesToBeInSet(column="resolved_from", value_set=list(SOURCES)),
        gxe.ExpectColumnValuesToNotBeNull(column="commerce_value"),
        gxe.ExpectColumnValuesToNotBeNull(column="warehouse_value"),
    ]


def _availability(_: References) -> list[Expectation]:
    return [
        *key_rules("sku", "location_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="available_quantity"),
        gxe.ExpectColumnValuesToBeBetween(column="available_quantity", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="is_on_stock"),
    ]


inventory_positions_suite = DatasetSuite(
    name="inventory_positions_suite",
    table="core.inventory_positions",
    key_columns=("sku", "location_id"),
    columns=("on_hand", "available_quantity", "on_hand_source", "available_source"),
    expectations=_positions,
)

inventory_conflicts_suite = DatasetSuite(
    name="inventory_conflicts_suite",
    table="quality.inventory_conflicts",
    key_columns=("sku", "location_id", "field"),
    columns=("commerce_value", "warehouse_value", "resolved_from"),
    expectations=_conflicts,
)

inventory_availability_suite = DatasetSuite(
    name="inventory_availability_suite",
    table="serving.v1_inventory_availability",
    key_columns=("sku", "location_id"),
    columns=("available_quantity", "is_on_stock"),
    expectations=_availability,
)

INVENTORY_SUITES: tuple[DatasetSuite, ...] = (
    inventory_positions_suite,
    inventory_conflicts_suite,
    inventory_availability_suite,
)
