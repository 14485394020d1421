"""Commerce queue sensor: drains the commerce subscription's RabbitMQ queue instead of polling /messages.

Each tick reads a bounded batch (`max_messages`, `max_seconds`), appends the messages to
`ops.change_events` (transport `amqp`, deduped by message id) and acks the batch only after that
load has committed. A crash before the ack leaves the messages unacked: the broker delivers them
again and the dedup stores each once. Order does not matter: the apply run re-fetches each changed
resource and orders its events by `sequenceNumber`. A message that is not a JSON message object is
kept in `quality.quarantine` with the reason (committed before the ack too), never dropped.

Each tick then asks for the run that applies the stored events not applied yet, up to the newest
stored batch, as `commerce_messages_sensor` does: `commerce_changes_job`, or the job of the one kind of
event pending (`commerce_product_changes_job`, `commerce_inventory_changes_job`); not when that run
was already requested or a change run is still waiting to start (then a later tick asks).
Use this sensor or `commerce_messages_sensor`, not both: they feed the same apply jobs.
"""

import hashlib
from typing import Any

import dagster as dg
import orjson

from pipelines.change_events import (
    CHANGE_EVENTS,
    ChangeEvent,
    append_change_events,
    new_event_count,
    skip_when_hub_busy,
    waiting_run,
)
from pipelines.jobs import COMMERCE_CHANGES_JOBS
from pipelines.sensors.commerce_messages import apply_run_request, commerce_messages_to_events, pending_changes
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from resources.hub import HubResource, held_open
from resources.queue import URL_SETTING, Batch, CommerceQueueResource, Delivery

SOURCE = "commerce"
RUN_KEY_TAG = "dagster/run_key"  # what the sensor daemon tags a run launched for a run key with
#: what a malformed message raises while it becomes a change event
MESSAGE_ERRORS = (KeyError, TypeError, ValueError, AttributeError)


def _events(deliveries: list[Delivery]) -> tuple[list[ChangeEvent], list[Quarantined]]:
    """The deliveries as change events, and the ones that cannot be, with the reason."""
    events: list[ChangeEvent] = []
    bad: list[Quarantined] = []
    for delivery in deliveries:
        key = hashlib.sha256(delivery.body).hexdigest()
        try:
            message: Any = orjson.loads(delivery.body)
            if not isinstance(message, dict):
                raise ValueError(f"the message is a JSON {type(message).__name__}, not an object")
            events += commerce_messages_to_events([message])
        except orjson.JSONDecodeError as exc:
            bad.append(Quarantined(None, f"not JSON: {exc}", [delivery.body.decode(errors="replace")], key=key))
        except MESSAGE_ERRORS as exc:
            bad.append(Quarantined(None, f"not a commerce message: {type(exc).__name__} {exc}", message, key=key))
    return events, bad


@dg.sensor(
    jobs=list(COMMERCE_CHANGES_JOBS),
    minimum_interval_seconds=30,
    description="Commerce change messages from the subscription queue into ops.change_events (ack after commit), "
    "then a run that applies them.",
)
def commerce_queue_sensor(context: dg.SensorEvaluationContext, commerce_queue: CommerceQueueResource, hub: HubResource):
    return _tick(context, commerce_queue, hub)


@skip_when_hub_busy
def _tick(context: dg.SensorEvaluationContext, commerce_queue: CommerceQueueResource, hub: HubResource):
    if not commerce_queue.configured:
        return dg.SkipReason(f"{URL_SETTING} is not set: no commerce subscription queue to drain")
    hub.ensure_table(CHANGE_EVENTS)
    with commerce_queue.batch() as batch:
        if batch.deliveries:
            _store(context, hub, batch, commerce_queue.queue)
    with held_open(hub):  # one open of an embedded hub for the applied cursors and the newest batches
        pending = pending_changes(hub)  # also after a tick that stored events and crashed before asking
    read = f"{len(batch.deliveries)} message(s) read"
    if pending is None:
        return dg.SkipReason(f"{read}; no stored commerce events wait to be applied")
    upto, kinds = pending
    request = apply_run_request(upto, kinds)
    if _requested(context.instance, request.run_key):
        return dg.SkipReason(f"{read}; events up to batch {upto} already requested")
    waiting = [run for job in COMMERCE_CHANGES_JOBS if (run := waiting_run(context.instance, job.name))]
    if waiting:  # one writer on the hub: ask again once that run has started
        return dg.SkipReason(f"run {waiting[0]} has not started yet; events up to batch {upto} are asked for after it")
    return request


def _store(context: dg.SensorEvaluationContext, hub: HubResource, batch: Batch, queue: str) -> None:
    """Commit the batch's events (and quarantine what is not a message), then ack the batch."""
    events, bad = _events(batch.deliveries)
    if bad:
        with hub.load(f"quarantine:{SOURCE}:amqp") as quarantined:
            quarantined.stage(QUARANTINE).append(quarantine_rows(CHANGE_EVENTS.name, f"amqp:{queue}", None, bad))
        context.log.warning(f"{len(bad)} message(s) quarantined: {bad[0].reason}")
    load = append_change_events(hub, SOURCE, events, transport="amqp")
    batch.ack()  # only now: the events are committed
    redelivered = sum(d.redelivered for d in batch.deliveries)
    context.log.info(
        f"{len(batch.deliveries)} message(s) from {queue} ({redelivered} redelivered): "
        f"{new_event_count(load)} new event(s) in batch {load.batch_id}"
    )


def _requested(instance: dg.DagsterInstance, run_key: str) -> bool:
    return bool(instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))
