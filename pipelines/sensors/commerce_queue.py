"""Commerce queue sensor: drains the commerce subscription's RabbitMQ queue instead of polling /messages.

Each tick reads a bounded batch (`max_messages`, `max_seconds`), appends the messages to
`ops.change_events` (transport `amqp`, deduped by message id) and acks the batch only after that
load has committed. A crash before the ack leaves the messages unacked: the broker delivers them
again and the dedup stores each once. Order does not matter: the apply run re-fetches each changed
resource and orders its events by `sequenceNumber`. A message that is not a JSON message object is
kept in `quality.quarantine` with the reason (committed before the ack too), never dropped.

Each tick then asks for a `commerce_changes_job` run up to the newest stored batch, unless that run
was already requested or a run of the job is still waiting to start (then a later tick asks).
Use this sensor or `commerce_messages_sensor`, not both: they feed the same apply job.
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
from pipelines.jobs import commerce_changes_job
from pipelines.sensors.commerce_messages import apply_run_request, commerce_messages_to_events
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from resources.hub import HubResource
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
    job=commerce_changes_job,
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
    newest = hub.scalar("SELECT max(_batch_id) FROM ops.change_events WHERE source = ?", [SOURCE])
    if newest is None:
        return dg.SkipReason(f"no commerce events stored ({len(batch.deliveries)} message(s) read)")
    # Also after a tick that stored events and crashed before asking for their run.
    request = apply_run_request(int(newest))
    if _requested(context.instance, request.run_key):
        return dg.SkipReason(f"{len(batch.deliveries)} message(s) read; events up to batch {newest} already requested")
    waiting = waiting_run(context.instance, commerce_changes_job.name)
    if waiting is not None:
        return dg.SkipReason(f"run {waiting} has not started yet; events up to batch {newest} are asked for after it")
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
