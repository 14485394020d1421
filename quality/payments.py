"""Expectation suites for the payment gateway's datasets in the hub's `core` schema."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import key_rules, non_empty
from quality.reference import ISO_4217_ACTIVE
from quality.validation import DatasetSuite, References

CHARGE_STATUSES = ("succeeded", "pending", "failed")
RISK_SCORE_RANGE = (0, 100)


def _currency() -> Expectation:
    """Upper-case ISO 4217: the conformed form of Stripe's lower-case codes."""
    return gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(ISO_4217_ACTIVE))


def _payments(_: References) -> list[Expectation]:
    low, high = RISK_SCORE_RANGE
    return [
        non_empty(),
        *key_rules("payment_id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="amount_captured", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="amount_refunded", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="amount", column_B="amount_refunded", or_equal=True),
        _currency(),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(CHARGE_STATUSES)),
        gxe.ExpectColumnValuesToBeBetween(column="risk_score", min_value=low, max_value=high),
    ]


def _refunds(_: References) -> list[Expectation]:
    # A young account may have no refund or dispute yet: these tables may be empty.
    return [
        *key_rules("refund_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="payment_id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
        _currency(),
    ]


def _disputes(_: References) -> list[Expectation]:
    return [
        *key_rules("dispute_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="payment_id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
        _currency(),
    ]


def _balance_transactions(_: References) -> list[Expectation]:
    return [
        non_empty(),
        *key_rules("balance_transaction_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="type"),
        gxe.ExpectColumnValuesToBeBetween(column="fee", min_value=0),
        _currency(),
    ]


payments_suite = DatasetSuite(
    name="payments_suite",
    table="core.payments",
    key_columns=("payment_id",),
    columns=("amount", "amount_captured", "amount_refunded", "currency", "status", "risk_score"),
    expectations=_payments,
)

refunds_suite = DatasetSuite(
    name="refunds_suite",
    table="core.refunds",
    key_columns=("refund_id",),
    columns=("payment_id", "amount", "currency"),
    expectations=_refunds,
)

disputes_suite = DatasetSuite(
    name="disputes_suite",
    table="core.disputes",
    key_columns=("dispute_id",),
    columns=("payment_id", "amount", "currency"),
    expectations=_disputes,
)

balance_transactions_suite = DatasetSuite(
    name="balance_transactions_suite",
    table="core.balance_transactions",
    key_columns=("balance_transaction_id",),
    columns=("type", "fee", "currency"),
    expectations=_balance_transactions,
)

PAYMENTS_SUITES: tuple[DatasetSuite, ...] = (payments_suite, refunds_suite, disputes_suite, balance_transactions_suite)
