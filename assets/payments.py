"""Payment gateway (Stripe): charges, refunds, disputes, payment intents, balance transactions and events.

Stripe objects carry no version and cannot be listed by modification time, so the raw tables are
unversioned (a row changes when its document does) and an incremental run reads the objects created
since the watermark plus the newest snapshot of every object an event touched since then.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any, Literal

import dagster as dg

from assets.landing import (
    RecordShape,
    asset_key,
    conformed_assets,
    empty_columns,
    land_pages,
    materialization,
    raw_table,
)
from resources.hub import HUB_POOL, HubResource, TableSpec, held_open
from resources.payments import Page, StripeResource

GROUP = "payments"
#: Stripe keeps events for 30 days; an older watermark needs a full run
EVENT_RETENTION = timedelta(days=30)


def _created_at(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(record["created"], UTC)


STRIPE = RecordShape(id=itemgetter("id"), version=None, modified_at=_created_at)

RAW_CHARGES = raw_table("payments_charges", "Stripe charges, as extracted.", versioned=False)
RAW_REFUNDS = raw_table("payments_refunds", "Stripe refunds, as extracted.", versioned=False)
RAW_DISPUTES = raw_table("payments_disputes", "Stripe disputes, as extracted.", versioned=False)
RAW_PAYMENT_INTENTS = raw_table("payments_payment_intents", "Stripe payment intents.", versioned=False)
RAW_BALANCE_TRANSACTIONS = raw_table(
    "payments_balance_transactions", "Stripe balance transactions (charges, refunds, fees).", versioned=False
)
RAW_EVENTS = raw_table("payments_events", "Stripe events; kept here beyond Stripe's 30-day retention.", versioned=False)

PAYMENTS = TableSpec(
    "core.payments",
    (
        ("payment_id", "text"),
        ("order_id", "text"),
        ("amount", "bigint"),
        ("amount_captured", "bigint"),
        ("amount_refunded", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("paid", "bool"),
        ("refunded", "bool"),
        ("risk_level", "text"),
        ("risk_score", "int"),
        ("payment_intent_id", "text"),
        ("disputed", "bool"),
        ("created_at", "timestamp"),
    ),
    ("payment_id",),
    description="One row per charge; amounts in minor units. order_id is the commerce order in metadata.",
)
REFUNDS = TableSpec(
    "core.refunds",
    (
        ("refund_id", "text"),
        ("payment_id", "text"),
        ("payment_intent_id", "text"),
        ("order_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("reason", "text"),
        ("balance_transaction_id", "text"),
        ("created_at", "timestamp"),
    ),
    ("refund_id",),
    description="Refunds of charges (partial or full), in minor units.",
)
DISPUTES = TableSpec(
    "core.disputes",
    (
        ("dispute_id", "text"),
        ("payment_id", "text"),
        ("payment_intent_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("reason", "text"),
        ("status", "text"),
        ("evidence_due_at", "timestamp"),
        ("created_at", "timestamp"),
    ),
    ("dispute_id",),
    description="Disputes (chargebacks) raised against charges.",
)
BALANCE_TRANSACTIONS = TableSpec(
    "core.balance_transactions",
    (
        ("balance_transaction_id", "text"),
        ("type", "text"),
        ("reporting_category", "text"),
        ("source_id", "text"),
        ("amount", "bigint"),
        ("fee", "bigint"),
        ("net", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("available_at", "timestamp"),
        ("created_at", "timestamp"),
    ),
    ("balance_transaction_id",),
    description="Movements of the Stripe balance: charges, refunds and dispute adjustments, with fees.",
)

PAYMENTS_CORE_TABLES = (PAYMENTS, REFUNDS, DISPUTES, BALANCE_TRANSACTIONS)


class PaymentsExtractConfig(dg.Config):
    """`full` lists everything; `incremental` reads what was created or changed since the watermark."""

    mode: Literal["full", "incremental"] = "full"
    lookback_seconds: int = 600


def _upper(currency: str | None) -> str | None:
    return currency.upper() if currency else None


def _timestamp(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _rows(spec: TableSpec, documents: list[dict[str, Any]], row: Callable[[dict[str, Any]], dict[str, Any]]):
    columns = empty_columns(spec)
    for doc in documents:
        for name, value in row(doc).items():
            columns[name].append(value)
    return {spec.name: columns}


def flatten_charges(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    def row(doc: dict[str, Any]) -> dict[str, Any]:
        outcome = doc.get("outcome") or {}
        return {
            "payment_id": doc["id"],
            "order_id": (doc.get("metadata") or {}).get("order_id"),
            "amount": doc["amount"],
            "amount_captured": doc.get("amount_captured"),
            "amount_refunded": doc.get("amount_refunded"),
            "currency": _upper(doc["currency"]),
            "status": doc.get("status"),
            "paid": doc.get("paid"),
            "refunded": doc.get("refunded"),
            "risk_level": outcome.get("risk_level"),
            "risk_score": outcome.get("risk_score"),
            "payment_intent_id": doc.get("payment_intent"),
            "disputed": doc.get("disputed"),
            "created_at": _timestamp(doc["created"]),
        }

    return _rows(PAYMENTS, documents, row)


def flatten_refunds(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    def row(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "refund_id": doc["id"],
            "payment_id": doc.get("charge"),
            "payment_intent_id": doc.get("payment_intent"),
            "order_id": (doc.get("metadata") or {}).get("order_id"),
            "amount": doc["amount"],
            "currency": _upper(doc["currency"]),
            "status": doc.get("status"),
            "reason": doc.get("reason"),
            "balance_transaction_id": doc.get("balance_transaction"),
            "created_at": _timestamp(doc["created"]),
        }

    return _rows(REFUNDS, documents, row)


def flatten_disputes(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    def row(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "dispute_id": doc["id"],
            "payment_id": doc.get("charge"),
            "payment_intent_id": doc.get("payment_intent"),
            "amount": doc["amount"],
            "currency": _upper(doc["currency"]),
            "reason": doc.get("reason"),
            "status": doc.get("status"),
            "evidence_due_at": _timestamp((doc.get("evidence_details") or {}).get("due_by")),
            "created_at": _timestamp(doc["created"]),
        }

    return _rows(DISPUTES, documents, row)


def flatten_balance_transactions(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    def row(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "balance_transaction_id": doc["id"],
            "type": doc.get("type"),
            "reporting_category": doc.get("reporting_category"),
            "source_id": doc.get("source"),
            "amount": doc["amount"],
            "fee": doc.get("fee"),
            "net": doc.get("net"),
            "currency": _upper(doc["currency"]),
            "status": doc.get("status"),
            "available_at": _timestamp(doc.get("available_on")),
            "created_at": _timestamp(doc["created"]),
        }

    return _rows(BALANCE_TRANSACTIONS, documents, row)


# The `object` field of each list's objects, as events carry them in `data.object`.
NOUNS = {
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "payment_intents": "payment_intent",
    "balance_transactions": "balance_transaction",
}


def changed_pages(payments: StripeResource, object_name: str, since: datetime) -> Iterator[Page]:
    """Objects created since `since`, then the newest snapshot of every other object an event changed.

    A dispute changes its charge (`disputed`) without a charge event, so disputed charges are fetched.
    """
    seen: set[str] = set()
    for page in payments.list_pages(object_name, created_gte=since):
        seen.update(o["id"] for o in page)
        yield page
    if object_name == "events":
        return
    snapshots: dict[str, dict[str, Any]] = {}
    refetch: set[str] = set()
    for page in payments.list_pages("events", created_gte=since):
        for event in page:  # newest first: the first snapshot of an object is its latest
            obj = event["data"]["object"]
            if obj.get("object") == NOUNS[object_name] and obj["id"] not in seen:
                snapshots.setdefault(obj["id"], obj)
            elif object_name == "charges" and obj.get("object") == "dispute" and obj.get("charge") not in seen:
                refetch.add(obj["charge"])
    changed = [obj for object_id, obj in snapshots.items() if object_id not in refetch]
    changed += [payments.get("charges", charge_id) for charge_id in sorted(refetch)]
    for start in range(0, len(changed), payments.page_size):
        yield changed[start : start + payments.page_size]


def _raw_asset(object_name: str, spec: TableSpec) -> dg.AssetsDefinition:
    @dg.asset(key=asset_key(spec), group_name=GROUP, pool=HUB_POOL, kinds={"stripe"}, description=spec.description)
    def landing(
        context: dg.AssetExecutionContext,
        config: PaymentsExtractConfig,
        payments: StripeResource,
        hub: HubResource,
    ) -> dg.MaterializeResult:
        with held_open(hub):  # one open of an embedded hub for the whole step
            return _landed(context, config, payments, hub, object_name, spec)

    return landing


def _landed(
    context: dg.AssetExecutionContext,
    config: PaymentsExtractConfig,
    payments: StripeResource,
    hub: HubResource,
    object_name: str,
    spec: TableSpec,
) -> dg.MaterializeResult:
    """Land one object type's records as `config.mode` says, and report the raw table."""
    state = hub.sync_state(spec.name)
    mode = config.mode
    since = state.watermark - timedelta(seconds=config.lookback_seconds) if state and state.watermark else None
    if mode == "incremental" and (since is None or since < datetime.now(UTC) - EVENT_RETENTION):
        context.log.info(f"{spec.name}: no watermark within Stripe's 30-day event window; listing everything")
        mode = "full"
    if mode == "incremental" and since is not None:
        context.log.info(f"{spec.name}: {object_name} created or changed since {since.isoformat()}")
        pages = changed_pages(payments, object_name, since)
    else:
        pages = payments.list_pages(object_name)
    load = land_pages(context, hub, spec, pages, source=f"payments/{object_name}", shape=STRIPE)
    watermark = load.watermark.isoformat() if load.watermark else None
    return materialization(hub, spec, load, mode=mode, watermark=watermark)


raw_payments_charges = _raw_asset("charges", RAW_CHARGES)
raw_payments_refunds = _raw_asset("refunds", RAW_REFUNDS)
raw_payments_disputes = _raw_asset("disputes", RAW_DISPUTES)
raw_payments_payment_intents = _raw_asset("payment_intents", RAW_PAYMENT_INTENTS)
raw_payments_balance_transactions = _raw_asset("balance_transactions", RAW_BALANCE_TRANSACTIONS)
raw_payments_events = _raw_asset("events", RAW_EVENTS)

_core_assets = partial(conformed_assets, system="payments", group=GROUP)

core_payments = _core_assets("core_payments", RAW_CHARGES, (PAYMENTS,), flatten_charges)
core_refunds = _core_assets("core_refunds", RAW_REFUNDS, (REFUNDS,), flatten_refunds)
core_disputes = _core_assets("core_disputes", RAW_DISPUTES, (DISPUTES,), flatten_disputes)
core_balance_transactions = _core_assets(
    "core_balance_transactions", RAW_BALANCE_TRANSACTIONS, (BALANCE_TRANSACTIONS,), flatten_balance_transactions
)

RAW_PAYMENTS_ASSETS = (
    raw_payments_charges,
    raw_payments_refunds,
    raw_payments_disputes,
    raw_payments_payment_intents,
    raw_payments_balance_transactions,
    raw_payments_events,
)


payments_assets = [
    *RAW_PAYMENTS_ASSETS,
    core_payments,
    core_refunds,
    core_disputes,
    core_balance_transactions,
]
