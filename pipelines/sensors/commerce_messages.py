"""Commerce messages sensor: change-data-capture from the commercetools Messages API.

Each tick reads the messages after the position committed to the hub (sync key `events:commerce`,
cursor `{"createdAt": ..., "id": ...}`), keyset paged by (createdAt, id) with a short lookback
for messages that became visible late. New ones are appended to `ops.change_events` together with
the new position; only then does the sensor move its Dagster cursor (a mirror of the hub's) and
request a `commerce_changes_job` run that applies the stored events not applied yet, up to the newest
load batch. The run key names that batch, so no two runs are requested for the same events; the apply
run records how far it applied, so a change is never applied twice. While a requested run waits to
start, no other is requested (one writer on the hub); a failed run leaves its events pending and a
later tick requests them again.
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
from pipelines.jobs import commerce_changes_config, commerce_changes_job
from resources.commerce import CommerceToolsResource, MessagePosition
from resources.hub import HubResource

SOURCE = "commerce"
SYNC_KEY = f"events:{SOURCE}"
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


def apply_run_request(upto_batch_id: int) -> dg.RunRequest:
    """A `commerce_changes_job` run applying the commerce events committed up to `upto_batch_id`."""
    return dg.RunRequest(
        run_key=f"commerce-changes:upto-{upto_batch_id}",
        job_name=commerce_changes_job.name,
        run_config=commerce_changes_config(upto_batch_id),
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
    job=commerce_changes_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls commerce /messages into ops.change_events and requests commerce_changes_job for new ones.",
)
def commerce_messages_sensor(
    context: dg.SensorEvaluationContext, commerce: CommerceToolsResource, hub: HubResource
) -> dg.RunRequest | dg.SkipReason:
    return _tick(context, commerce, hub)


@skip_when_hub_busy
def _tick(
    context: dg.SensorEvaluationContext, commerce: CommerceToolsResource, hub: HubResource
) -> dg.RunRequest | dg.SkipReason:
    state = hub.sync_state(SYNC_KEY)
    after = decode_position(state.cursor if state else None)
    events: list[ChangeEvent] = []
    position = after
    for page in commerce.message_pages(after, LOOKBACK):
        events += commerce_messages_to_events(page)
        position = max(position or ("", ""), (page[-1]["createdAt"], page[-1]["id"]))
    fresh = _unseen(hub, events)
    if fresh:
        load = append_change_events(hub, SOURCE, fresh, transport="poll", cursor=encode_position(position))
        context.update_cursor(encode_position(position))
        context.log.info(
            f"{new_event_count(load)} new commerce messages stored in batch {load.batch_id}, up to {position[0]}"
        )
    pending = _pending_upto(hub)
    if pending is None:
        return dg.SkipReason(f"no new commerce messages after {after[0] if after else 'the beginning'}")
    waiting = waiting_run(context.instance, commerce_changes_job.name)
    if waiting is not None:  # one writer on the hub: ask again once that run has started
        return dg.SkipReason(f"commerce events up to batch {pending} wait for run {waiting} to start")
    return apply_run_request(pending)


def _pending_upto(hub: HubResource) -> int | None:
    """The newest load batch of stored commerce events, when some are not applied yet (else None).

    A failed or never-run apply leaves its events pending, so a later tick requests them again.
    """
    if not hub.backend.table_exists(CHANGE_EVENTS.name):
        return None
    newest = hub.scalar(f"SELECT max(_batch_id) FROM {CHANGE_EVENTS.name} WHERE source = ?", [SOURCE])
    states = [hub.sync_state(f"apply:{spec.name}") for spec in (RAW_PRODUCT_PROJECTIONS, RAW_INVENTORY_ENTRIES)]
    applied = min(int(s.cursor) if s and s.cursor else 0 for s in states)
    return int(newest) if newest is not None and newest > applied else None
