"""Expectation suites for the payment gateway's datasets in the hub's `core` schema."""

from __future__ import annotations

from great_expectations import expectations as gxe
from great_expectations.expectations import Expectation

from quality.commerce import currencies, key_rules, non_empty
from quality.config import QualityRules
from quality.validation import DatasetSuite, References

CHARGE_STATUSES = ("succeeded", "pending", "failed")
RISK_SCORE_RANGE = (0, 100)


def _currency(rules: QualityRules) -> Expectation:
    """Upper-case ISO 4217: the conformed form of Stripe's lower-case codes."""
    return gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies(rules))


def _payments(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("payment_id")]


def _payment_rows(rules: QualityRules) -> list[Expectation]:
    low, high = RISK_SCORE_RANGE
    return [
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="amount_captured", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="amount_refunded", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="amount", column_B="amount_refunded", or_equal=True),
        _currency(rules),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(CHARGE_STATUSES)),
        gxe.ExpectColumnValuesToBeBetween(column="risk_score", min_value=low, max_value=high),
    ]


def _refunds(_: References) -> list[Expectation]:
    # A young account may have no refund or dispute yet: these tables may be empty.
    return key_rules("refund_id")


def _disputes(_: References) -> list[Expectation]:
    return key_rules("dispute_id")


def _money_rows(rules: QualityRules) -> list[Expectation]:
    """Refunds and disputes: tied to a payment, a non-negative amount, a known currency."""
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="payment_id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
        _currency(rules),
    ]


def _balance_transactions(_: References) -> list[Expectation]:
    return [non_empty(), *key_rules("balance_transaction_id")]


def _balance_transaction_rows(rules: QualityRules) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="type"),
        gxe.ExpectColumnValuesToBeBetween(column="fee", min_value=0),
        _currency(rules),
    ]


payments_suite = DatasetSuite(
    name="payments_suite",
    table="core.payments",
    key_columns=("payment_id",),
    columns=("amount", "amount_captured", "amount_refunded", "currency", "status", "risk_score"),
    expectations=_payments,
    row_rules=_payment_rows,
)

refunds_suite = DatasetSuite(
    name="refunds_suite",
    table="core.refunds",
    key_columns=("refund_id",),
    columns=("payment_id", "amount", "currency"),
    expectations=_refunds,
    row_rules=_money_rows,
)

disputes_suite = DatasetSuite(
    name="disputes_suite",
    table="core.disputes",
    key_columns=("dispute_id",),
    columns=("payment_id", "amount", "currency"),
    expectations=_disputes,
    row_rules=_money_rows,
)

balance_transactions_suite = DatasetSuite(
    name="balance_transactions_suite",
    table="core.balance_transactions",
    key_columns=("balance_transaction_id",),
    columns=("type", "fee", "currency"),
    expectations=_balance_transactions,
    row_rules=_balance_transaction_rows,
)

PAYMENTS_SUITES: tuple[DatasetSuite, ...] = (payments_suite, refunds_suite, disputes_suite, balance_transactions_suite)
