"""Payment reconciliation: every order against the money the gateway captured, refunded and had disputed.

`serving.v1_payment_reconciliation` has one row per order, plus one per payment whose order does
not exist and one per refund that reaches no payment and no order. Rebuilt whole from core on
every run (merge `replace`); tolerance and counted statuses come from the `finance` rules section.

Status precedence. A row without an order is `refund_without_order` when money was refunded on it,
else `payment_without_order`. An order row is, in this order: `disputed` (a payment is disputed),
`unpaid` (nothing captured, total above zero), `amount_mismatch` (captured differs from the total by
more than the tolerance, or was captured in another currency), else `matched`.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd
import pydantic
from pydantic import Field

from assets.landing import asset_key, materialization, read_table
from assets.orders import ORDERS
from assets.payments import DISPUTES, PAYMENTS, REFUNDS
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource

GROUP = "serving"

STATUSES = (
    "matched",
    "unpaid",
    "amount_mismatch",
    "refund_without_order",
    "payment_without_order",
    "disputed",
)

PAYMENT_RECONCILIATION = TableSpec(
    "serving.v1_payment_reconciliation",
    (
        ("reconciliation_id", "text"),
        ("row_kind", "text"),
        ("order_id", "text"),
        ("order_number", "text"),
        ("order_payment_state", "text"),
        ("currency", "text"),
        ("order_total", "bigint"),
        ("captured_amount", "bigint"),
        ("refunded_amount", "bigint"),
        ("net_amount", "bigint"),
        ("difference_amount", "bigint"),
        ("payment_count", "int"),
        ("refund_count", "int"),
        ("disputed", "bool"),
        ("disputed_amount", "bigint"),
        ("risk_level", "text"),
        ("status", "text"),
        ("status_reason", "text"),
    ),
    ("reconciliation_id",),
    merge="replace",
    description="One row per order (and per payment or refund without an order): totals, money moved, status.",
    column_descriptions={
        "reconciliation_id": "The order id; for rows without an order, the payment id or the refund id.",
        "net_amount": "captured_amount - refunded_amount.",
        "difference_amount": "captured_amount - order_total (null without an order).",
        "status": "One of " + ", ".join(STATUSES) + "; precedence in docs/serving-contracts.md.",
    },
)


class FinanceRules(pydantic.BaseModel):
    """The `finance` section of the rules file."""

    model_config = pydantic.ConfigDict(extra="forbid")

    amount_tolerance_minor: int = Field(default=0, ge=0, description="captured may differ from the total by this")
    captured_payment_statuses: list[str] = Field(default=["succeeded"], min_length=1)
    counted_refund_statuses: list[str] = Field(default=["succeeded", "pending"], min_length=1)
    risk_levels: list[str] = Field(
        default=["normal", "elevated", "highest"], min_length=1, description="lowest to highest"
    )


def _sum(frame: pd.DataFrame, column: str) -> int:
    return int(frame[column].fillna(0).sum()) if not frame.empty else 0


def highest_risk(levels: Sequence[Any], order: Sequence[str]) -> str | None:
    """The highest known risk level among `levels`; an unknown level counts above the known ones."""
    known = [lv for lv in levels if isinstance(lv, str)]
    if not known:
        return None
    return max(known, key=lambda lv: order.index(lv) if lv in order else len(order))


def order_status(
    total: int, currency: str | None, captured: int, captured_currencies: set[str], disputed: bool, tolerance: int
) -> tuple[str, str]:
    """The status of an order row and why, by the documented precedence."""
    if disputed:
        return "disputed", "a payment of the order is disputed"
    if captured == 0 and total > 0:
        return "unpaid", "nothing captured"
    if captured_currencies - {currency}:
        return "amount_mismatch", f"captured in {', '.join(sorted(captured_currencies))}, order in {currency}"
    if abs(captured - total) > tolerance:
        return "amount_mismatch", f"captured {captured} for a total of {total}"
    return "matched", "captured equals the order total"


def reconcile(
    orders: pd.DataFrame, payments: pd.DataFrame, refunds: pd.DataFrame, disputes: pd.DataFrame, rules: FinanceRules
) -> dict[str, list]:
    """The reconciliation rows, as column lists for PAYMENT_RECONCILIATION."""
    order_ids = set(orders["order_id"])
    payments = payments.copy()
    payments["captured"] = (
        payments["amount_captured"].fillna(0).where(payments["status"].isin(rules.captured_payment_statuses), 0)
    )
    counted = refunds[refunds["status"].isin(rules.counted_refund_statuses)].copy()
    known_payments = set(payments["payment_id"])
    # Each payment and refund belongs to exactly one row: its order, else its payment, else itself.
    payments["row"] = [
        o if o in order_ids else p for p, o in zip(payments["payment_id"], payments["order_id"], strict=True)
    ]
    row_of_payment = dict(zip(payments["payment_id"], payments["row"], strict=True))
    counted["row"] = [
        row_of_payment[p] if p in known_payments else (o if o in order_ids else r)
        for r, p, o in zip(counted["refund_id"], counted["payment_id"], counted["order_id"], strict=True)
    ]
    disputed_payments = set(disputes["payment_id"]) | set(payments.loc[payments["disputed"].eq(True), "payment_id"])
    dispute_rows = disputes.assign(row=disputes["payment_id"].map(row_of_payment))
    by_row_payments = dict(tuple(payments.groupby("row"))) if not payments.empty else {}
    by_row_refunds = dict(tuple(counted.groupby("row"))) if not counted.empty else {}
    by_row_disputes = dict(tuple(dispute_rows.groupby("row"))) if not dispute_rows.empty else {}
    empty_payments, empty_refunds = payments.iloc[0:0], counted.iloc[0:0]

    columns: dict[str, list] = {name: [] for name in PAYMENT_RECONCILIATION.column_names}

    def add(row_id: str, kind: str, order: dict[str, Any] | None, fallback_currency: str | None, order_ref) -> None:
        paid = by_row_payments.get(row_id, empty_payments)
        refunded_rows = by_row_refunds.get(row_id, empty_refunds)
        captured, refunded = _sum(paid, "captured"), _sum(refunded_rows, "amount")
        disputed = bool(set(paid["payment_id"]) & disputed_payments)
        disputed_amount = _sum(by_row_disputes.get(row_id, disputes.iloc[0:0]), "amount")
        if order is not None:
            total, currency = int(order["total_cent_amount"] or 0), order["currency"]
            captured_currencies = set(paid.loc[paid["captured"] > 0, "currency"].dropna())
            status, reason = order_status(
                total, currency, captured, captured_currencies, disputed, rules.amount_tolerance_minor
            )
            difference = captured - total
        else:
            total, currency, difference = None, fallback_currency, None
            if refunded > 0:
                status, reason = "refund_without_order", f"{refunded} refunded on a payment with no order"
            else:
                status, reason = "payment_without_order", "a payment names no existing order"
        values = {
            "reconciliation_id": row_id,
            "row_kind": kind,
            "order_id": order_ref,
            "order_number": order["order_number"] if order is not None else None,
            "order_payment_state": order["payment_state"] if order is not None else None,
            "currency": currency,
            "order_total": total,
            "captured_amount": captured,
            "refunded_amount": refunded,
            "net_amount": captured - refunded,
            "difference_amount": difference,
            "payment_count": len(paid),
            "refund_count": len(refunded_rows),
            "disputed": disputed,
            "disputed_amount": disputed_amount,
            "risk_level": highest_risk(list(paid["risk_level"]), rules.risk_levels),
            "status": status,
            "status_reason": reason,
        }
        for name, value in values.items():
            columns[name].append(None if not isinstance(value, str) and pd.isna(value) else value)

    for order in orders.to_dict("records"):
        add(order["order_id"], "order", order, None, order["order_id"])
    for payment in payments[payments["row"] == payments["payment_id"]].to_dict("records"):
        add(payment["payment_id"], "payment", None, payment["currency"], payment["order_id"])
    for refund in counted[counted["row"] == counted["refund_id"]].to_dict("records"):
        add(refund["refund_id"], "refund", None, refund["currency"], refund["order_id"])
    return columns


@dg.asset(
    key=asset_key(PAYMENT_RECONCILIATION),
    deps=[asset_key(s) for s in (ORDERS, PAYMENTS, REFUNDS, DISPUTES)],
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"python", "pandas"},
    description=PAYMENT_RECONCILIATION.description,
)
def serving_payment_reconciliation(
    context: dg.AssetExecutionContext, hub: HubResource, rules: RulesResource
) -> dg.MaterializeResult:
    """Rebuild the payment reconciliation read model from core."""
    settings = rules.section("finance", FinanceRules)
    orders = read_table(
        hub, ORDERS, "SELECT order_id, order_number, payment_state, currency, total_cent_amount FROM core.orders"
    )
    payments = read_table(
        hub,
        PAYMENTS,
        "SELECT payment_id, order_id, amount_captured, currency, status, risk_level, disputed FROM core.payments",
    )
    refunds = read_table(
        hub, REFUNDS, "SELECT refund_id, payment_id, order_id, amount, currency, status FROM core.refunds"
    )
    disputes = read_table(hub, DISPUTES, "SELECT dispute_id, payment_id, amount FROM core.disputes")
    columns = reconcile(orders, payments, refunds, disputes, settings)
    with hub.load(PAYMENT_RECONCILIATION.name) as load:
        load.stage(PAYMENT_RECONCILIATION).append(PAYMENT_RECONCILIATION.to_arrow(columns))
    counts = pd.Series(columns["status"], dtype="object").value_counts()
    by_status = {status: int(counts.get(status, 0)) for status in STATUSES}
    context.log.info(f"{PAYMENT_RECONCILIATION.name}: {by_status}")
    return materialization(hub, PAYMENT_RECONCILIATION, load, **{f"status_{s}": n for s, n in by_status.items()})


finance_assets = [serving_payment_reconciliation]
