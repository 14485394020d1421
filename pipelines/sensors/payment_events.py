"""Payment events sensor: Stripe events about charges, refunds and disputes, applied to the hub.

Each tick lists `/v1/events` created since the committed cursor (the newest `created` second stored,
minus a small lookback, so events that become visible late or share the cursor's second are read
again) and appends them to `ops.change_events` (source `payments`, deduped by event id); the cursor
commits in that same load. When stored events are not applied yet, the sensor requests
`payment_events_apply_job` (run key: the batch range), unless such a run is still waiting to start:
that run applies every event stored by the time it starts.

The apply re-fetches every object the events name rather than landing the `data.object`
snapshots: a snapshot can be older than one already landed (Stripe does not order events, and
several share a second), a dispute changes its charge without a charge event, and a new charge's
payment intent and balance transaction come in no event. A re-fetched object is the current one,
whatever order the events arrived in. The events themselves land in `raw.payments_events`.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import orjson
from pydantic import Field

from assets.landing import asset_key, conform
from assets.payments import (
    BALANCE_TRANSACTIONS,
    DISPUTES,
    EVENT_RETENTION,
    PAYMENTS,
    RAW_BALANCE_TRANSACTIONS,
    RAW_CHARGES,
    RAW_DISPUTES,
    RAW_EVENTS,
    RAW_PAYMENT_INTENTS,
    RAW_REFUNDS,
    REFUNDS,
    flatten_balance_transactions,
    flatten_charges,
    flatten_disputes,
    flatten_refunds,
)
from pipelines.change_events import (
    CHANGE_EVENTS,
    ChangeEvent,
    append_change_events,
    new_event_count,
    skip_when_hub_busy,
    waiting_run,
)
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.payments import StripeResource

SOURCE = "payments"
EVENTS_SYNC_KEY = f"events:{SOURCE}"
APPLY_SYNC_KEY = f"apply:{SOURCE}"
LOOKBACK = timedelta(seconds=120)
#: charge.*, charge.refund.*, charge.dispute.* and refund.* events
EVENT_PREFIXES = ("charge.", "refund.")
#: Stripe lists by object, and where the apply lands them
RAW_BY_LIST = {
    "charges": RAW_CHARGES,
    "refunds": RAW_REFUNDS,
    "disputes": RAW_DISPUTES,
    "payment_intents": RAW_PAYMENT_INTENTS,
    "balance_transactions": RAW_BALANCE_TRANSACTIONS,
}
LIST_BY_OBJECT = {
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "payment_intent": "payment_intents",
    "balance_transaction": "balance_transactions",
}
CONFORMS = (
    (RAW_CHARGES, PAYMENTS, flatten_charges),
    (RAW_REFUNDS, REFUNDS, flatten_refunds),
    (RAW_DISPUTES, DISPUTES, flatten_disputes),
    (RAW_BALANCE_TRANSACTIONS, BALANCE_TRANSACTIONS, flatten_balance_transactions),
)


def to_change_event(event: dict[str, Any]) -> ChangeEvent:
    obj = event["data"]["object"]
    return ChangeEvent(
        event_id=event["id"],
        event_type=event["type"],
        resource_type=obj.get("object", ""),
        resource_id=obj["id"],
        occurred_at=datetime.fromtimestamp(event["created"], UTC),
        payload=event,
    )


def _cursor(hub: HubResource) -> datetime:
    """Where reading starts: the committed cursor, else what a sync already landed, else all Stripe keeps."""
    state = hub.sync_state(EVENTS_SYNC_KEY)
    if state and state.cursor:
        return datetime.fromtimestamp(int(state.cursor), UTC)
    landed = hub.sync_state(RAW_EVENTS.name)
    if landed and landed.watermark:
        return landed.watermark
    return datetime.now(UTC) - EVENT_RETENTION


def _pending(hub: HubResource) -> tuple[int, int] | None:
    """(last applied, newest stored) event batches, when stored events wait to be applied."""
    if not hub.backend.table_exists(CHANGE_EVENTS.name):
        return None
    newest = hub.scalar("SELECT max(_batch_id) FROM ops.change_events WHERE source = ?", [SOURCE])
    state = hub.sync_state(APPLY_SYNC_KEY)
    applied = int(state.cursor) if state and state.cursor else 0
    return (applied, int(newest)) if newest is not None and newest > applied else None


class ApplyPaymentEventsConfig(dg.Config):
    upto_batch_id: int = Field(
        description="Apply the payment events stored in ops.change_events up to this batch, and any stored since."
    )


@dg.op(pool=HUB_POOL, out={}, description="Re-fetch the objects named by stored payment events; land and conform.")
def apply_payment_events(
    context: dg.OpExecutionContext, config: ApplyPaymentEventsConfig, payments: StripeResource, hub: HubResource
):
    pending = _pending(hub)
    if pending is None:
        context.log.info(f"payment events up to batch {config.upto_batch_id} were already applied")
        return
    after, upto = pending  # everything stored by now: the sensor asks for no run while this one waits
    frame = hub.read_frame(
        "SELECT payload FROM ops.change_events WHERE source = ? AND _batch_id > ? AND _batch_id <= ?",
        [SOURCE, after, upto],
    )
    events = [orjson.loads(p) if isinstance(p, str) else p for p in frame["payload"]]
    objects = _refetch(payments, events)
    extracted_at = datetime.now(UTC)
    with hub.load(APPLY_SYNC_KEY) as load:
        load.stage(RAW_EVENTS).append(_raw_rows(RAW_EVENTS, events, "payments/events", extracted_at))
        for list_name, docs in objects.items():
            spec = RAW_BY_LIST[list_name]
            load.stage(spec).append(_raw_rows(spec, docs, f"payments/{list_name}", extracted_at))
        load.advance(cursor=str(upto))
    counts = {name: len(docs) for name, docs in objects.items()}
    context.log.info(f"applied {len(events)} payment events (batches {after + 1}..{upto}): {counts}")
    for spec in (RAW_EVENTS, *(RAW_BY_LIST[name] for name in objects)):
        yield _materialization(hub, spec, load.results.get(spec.name), load.batch_id, events=len(events))
    for raw, core, flatten in CONFORMS:
        conformed = conform(hub, raw, (core,), flatten)
        yield _materialization(hub, core, conformed.results.get(core.name), conformed.batch_id)


def _refetch(payments: StripeResource, events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The current state of every object the events name, plus the charges, payment intents and
    balance transactions those objects point at."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for event in events:
        obj = event["data"]["object"]
        if obj.get("object") in LIST_BY_OBJECT:
            wanted[LIST_BY_OBJECT[obj["object"]]].add(obj["id"])
        if obj.get("charge"):
            wanted["charges"].add(obj["charge"])  # a refund or dispute changes its charge
    fetched: dict[str, list[dict[str, Any]]] = {}
    for list_name in ("charges", "refunds", "disputes"):
        fetched[list_name] = [payments.get(list_name, i) for i in sorted(wanted[list_name])]
    for doc in (*fetched["charges"], *fetched["refunds"]):
        if doc.get("payment_intent"):
            wanted["payment_intents"].add(doc["payment_intent"])
        if doc.get("balance_transaction"):
            wanted["balance_transactions"].add(doc["balance_transaction"])
    for list_name in ("payment_intents", "balance_transactions"):
        fetched[list_name] = [payments.get(list_name, i) for i in sorted(wanted[list_name])]
    return {name: docs for name, docs in fetched.items() if docs}


def _raw_rows(spec: TableSpec, documents: Iterable[dict[str, Any]], source: str, extracted_at: datetime):
    documents = list(documents)
    return spec.to_arrow(
        {
            "id": [d["id"] for d in documents],
            "version": [None] * len(documents),
            "last_modified_at": [datetime.fromtimestamp(d["created"], UTC) for d in documents],
            "document": [orjson.dumps(d).decode() for d in documents],
            "_extracted_at": [extracted_at] * len(documents),
            "_source": [source] * len(documents),
        }
    )


def _materialization(hub: HubResource, spec: TableSpec, result, batch_id: int | None, **extra: Any):
    return dg.AssetMaterialization(
        asset_key=asset_key(spec),
        metadata={
            "dagster/row_count": hub.row_count(spec),
            "rows_staged": result.rows_staged if result else 0,
            "rows_changed": result.rows_changed if result else 0,
            "batch_id": batch_id,
            **extra,
        },
    )


@dg.job(description="Apply the payment events the sensor stored: re-fetch their objects, land raw, conform core.")
def payment_events_apply_job():
    apply_payment_events()


@dg.sensor(
    job=payment_events_apply_job,
    minimum_interval_seconds=60,
    description="Stripe charge, refund and dispute events into ops.change_events, then a run that applies them.",
)
def payment_events_sensor(context: dg.SensorEvaluationContext, payments: StripeResource, hub: HubResource):
    return _tick(context, payments, hub)


@skip_when_hub_busy
def _tick(context: dg.SensorEvaluationContext, payments: StripeResource, hub: HubResource):
    hub.ensure_table(CHANGE_EVENTS)
    cursor = _cursor(hub)
    since = cursor - LOOKBACK
    oldest = datetime.now(UTC) - EVENT_RETENTION
    if since < oldest:
        context.log.warning(
            f"payment events before {oldest.isoformat()} are past Stripe's 30-day retention and cannot be read; "
            "run full_sync_job to land what they changed"
        )
    listed = [e for page in payments.list_pages("events", created_gte=max(since, oldest)) for e in page]
    events = [to_change_event(e) for e in listed if e["type"].startswith(EVENT_PREFIXES)]
    newest = max((e["created"] for e in listed), default=int(cursor.timestamp()))
    if events or newest > cursor.timestamp():
        load = append_change_events(hub, SOURCE, events, transport="poll", cursor=str(newest))
        context.update_cursor(str(newest))
        context.log.info(
            f"{len(events)} payment events read since {since.isoformat()}, "
            f"{new_event_count(load)} of them new (batch {load.batch_id})"
        )
    pending = _pending(hub)
    if pending is None:
        return dg.SkipReason(f"no new payment events since {since.isoformat()}")
    applied, newest_batch = pending
    waiting = waiting_run(context.instance, payment_events_apply_job.name)
    if waiting is not None:
        return dg.SkipReason(f"payment events up to batch {newest_batch} are applied by run {waiting} when it starts")
    return dg.RunRequest(
        run_key=f"payment-events:{applied + 1}-{newest_batch}",
        run_config={"ops": {apply_payment_events.name: {"config": {"upto_batch_id": newest_batch}}}},
        tags={"change_events/source": SOURCE, "change_events/upto_batch_id": str(newest_batch)},
    )
