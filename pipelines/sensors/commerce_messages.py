"""Commerce messages sensor: change-data-capture from the commercetools Messages API.

Each tick reads the messages after the position committed to the hub (sync key `events:commerce`,
cursor `{"createdAt": ..., "id": ...}`), keyset paged by (createdAt, id) with a short lookback
for messages that became visible late. New ones are appended to `ops.change_events` together with
the new position; only then does the sensor move its Dagster cursor (a mirror of the hub's) and
request a `commerce_changes_job` run that applies the stored events not applied yet, up to the newest
load batch; when only one kind of event is pending, the job for that kind instead
(`commerce_product_changes_job`, `commerce_inventory_changes_job`: product events alone need neither
the inventory extract nor the inventory models). The run key names that batch (and that kind), so
no two runs are requested for the same events; the apply run records how far it applied, so a change
is never applied twice. While a requested run waits to start, no other is requested (one writer on the
hub); a failed run leaves its events pending and a later tick requests them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import dagster as dg
import orjson
import pandas as pd

from assets.commerce import RAW_INVENTORY_ENTRIES, RAW_PRODUCT_PROJECTIONS
from pipelines.change_events import (
    CHANGE_EVENTS,
    ChangeEvent,
    append_change_events,
    new_event_count,
    skip_when_hub_busy,
    waiting_run,
)
from pipelines.jobs import (
    COMMERCE_CHANGES_JOBS,
    commerce_changes_config,
    commerce_changes_job,
    commerce_changes_job_for,
)
from resources.commerce import CommerceToolsResource, MessagePosition
from resources.hub import HubResource, held_open

SOURCE = "commerce"
SYNC_KEY = f"events:{SOURCE}"
# The raw table each kind (resource type) of event is applied to, with its cursor `apply:<raw table>`.
APPLIED_TO = {"product": RAW_PRODUCT_PROJECTIONS, "inventory-entry": RAW_INVENTORY_ENTRIES}
# Messages sharing a millisecond can become visible after a reader passed it; re-read this much.
LOOKBACK = timedelta(seconds=10)


def commerce_messages_to_events(messages: Iterable[dict[str, Any]]) -> list[ChangeEvent]:
    """commercetools messages as change events; the whole message is kept as the payload."""
    events = []
    for message in messages:
        identifiers = message.get("resourceUserProvidedIdentifiers") or {}
        events.append(
            ChangeEvent(
                event_id=message["id"],
                event_type=message["type"],
                resource_type=message["resource"]["typeId"],
                resource_id=message["resource"]["id"],
                occurred_at=message["createdAt"],
                payload=message,
                resource_key=identifiers.get("sku") or message.get("sku") or identifiers.get("key"),
                sequence_number=message.get("sequenceNumber"),
                resource_version=message.get("resourceVersion"),
            )
        )
    return events


def apply_run_request(upto_batch_id: int, resource_types: Iterable[str] | None = None) -> dg.RunRequest:
    """A run applying the commerce events committed up to `upto_batch_id`: `commerce_changes_job`, or for
    events of some `resource_types` alone the job applying only those (its run key names them)."""
    job = commerce_changes_job if resource_types is None else commerce_changes_job_for(resource_types)
    if job is commerce_changes_job:
        kinds, run_key = None, f"commerce-changes:upto-{upto_batch_id}"
    else:
        kinds = sorted(set(resource_types or ()))
        run_key = f"commerce-changes:upto-{upto_batch_id}:{'+'.join(kinds)}"
    return dg.RunRequest(
        run_key=run_key,
        job_name=job.name,
        run_config=commerce_changes_config(upto_batch_id, kinds),
        tags={"commerce_changes/upto_batch_id": str(upto_batch_id)},
    )


def encode_position(position: MessagePosition) -> str:
    return orjson.dumps({"createdAt": position[0], "id": position[1]}).decode()


def decode_position(cursor: str | None) -> MessagePosition | None:
    if not cursor:
        return None
    value = orjson.loads(cursor)
    return value["createdAt"], value["id"]


def _unseen(hub: HubResource, events: Sequence[ChangeEvent]) -> list[ChangeEvent]:
    """The events not yet in ops.change_events (a lookback reads some again)."""
    if not events or not hub.backend.table_exists("ops.change_events"):
        return list(events)
    oldest = min(pd.Timestamp(e.occurred_at) for e in events)
    stored = hub.read_frame(
        "SELECT event_id FROM ops.change_events WHERE source = ? AND occurred_at >= ?",
        [SOURCE, oldest.to_pydatetime()],
    )
    known = set(stored["event_id"])
    return [e for e in events if e.event_id not in known]


@dg.sensor(
    jobs=list(COMMERCE_CHANGES_JOBS),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls commerce /messages into ops.change_events and requests commerce_changes_job (or the job for "
    "the one kind of event pending) for new ones.",
)
def commerce_messages_sensor(
    context: dg.SensorEvaluationContext, commerce: CommerceToolsResource, hub: HubResource
) -> dg.RunRequest | dg.SkipReason:
    return _tick(context, commerce, hub)


@skip_when_hub_busy
def _tick(
    context: dg.SensorEvaluationContext, commerce: CommerceToolsResource, hub: HubResource
) -> dg.RunRequest | dg.SkipReason:
    with held_open(hub):  # one open of an embedded hub for its schemas and the read
        state = hub.sync_state(SYNC_KEY)
    after = decode_position(state.cursor if state else None)
    events: list[ChangeEvent] = []
    position = after
    for page in commerce.message_pages(after, LOOKBACK):
        events += commerce_messages_to_events(page)
        position = max(position or ("", ""), (page[-1]["createdAt"], page[-1]["id"]))
    with held_open(hub):  # one open of an embedded hub for the statements below, not while paging
        fresh = _unseen(hub, events)
        if fresh:
            load = append_change_events(hub, SOURCE, fresh, transport="poll", cursor=encode_position(position))
            context.update_cursor(encode_position(position))
            context.log.info(
                f"{new_event_count(load)} new commerce messages stored in batch {load.batch_id}, up to {position[0]}"
            )
        pending = pending_changes(hub)
    if pending is None:
        return dg.SkipReason(f"no new commerce messages after {after[0] if after else 'the beginning'}")
    upto, kinds = pending
    waiting = [run for job in COMMERCE_CHANGES_JOBS if (run := waiting_run(context.instance, job.name))]
    if waiting:  # one writer on the hub: ask again once that run has started
        return dg.SkipReason(f"commerce events up to batch {upto} wait for run {waiting[0]} to start")
    return apply_run_request(upto, kinds)


def pending_changes(hub: HubResource) -> tuple[int, list[str]] | None:
    """The newest load batch of stored commerce events and the kinds with events not applied yet (None
    when there are none; events of other kinds apply nothing).

    A failed or never-run apply leaves its events pending, so a later tick requests them again.
    """
    if not hub.backend.table_exists(CHANGE_EVENTS.name):
        return None
    applied = {}
    for kind, spec in APPLIED_TO.items():
        state = hub.sync_state(f"apply:{spec.name}")
        applied[kind] = int(state.cursor) if state and state.cursor else 0
    newest = hub.read_frame(
        f"SELECT resource_type, max(_batch_id) AS batch FROM {CHANGE_EVENTS.name}"
        " WHERE source = ? AND _batch_id > ? GROUP BY resource_type",
        [SOURCE, min(applied.values())],
    )
    by_kind = {kind: int(batch) for kind, batch in zip(newest["resource_type"], newest["batch"], strict=True)}
    kinds = sorted(kind for kind, cursor in applied.items() if by_kind.get(kind, 0) > cursor)
    return (max(by_kind.values()), kinds) if kinds else None
