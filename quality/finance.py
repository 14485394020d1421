"""Expectation suites for the payment reconciliation read model (`serving.v1_payment_reconciliation`)."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from assets.finance import STATUSES
from quality.commerce import key_rules
from quality.validation import DatasetSuite, References


def _payment_reconciliation(_: References) -> list[Expectation]:
    return [
        *key_rules("reconciliation_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="status"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToBeInSet(column="row_kind", value_set=["order", "payment", "refund"]),
        gxe.ExpectColumnValuesToBeBetween(column="captured_amount", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="refunded_amount", min_value=0),
    ]


payment_reconciliation_suite = DatasetSuite(
    name="payment_reconciliation_suite",
    table="serving.v1_payment_reconciliation",
    key_columns=("reconciliation_id",),
    columns=("status", "row_kind", "captured_amount", "refunded_amount"),
    expectations=_payment_reconciliation,
)

FINANCE_SUITES = (payment_reconciliation_suite,)
