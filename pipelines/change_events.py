"""`ops.change_events`: the append-only history of every change message the sensors receive.

Sensors (polling or a message queue) append what they read here first, and only then move their
cursor or ack the message. The table is keyed by (source, event_id), so a message read twice, by a
lookback, a retry or a redelivery, is stored once. Apply runs read the events committed up to a load
batch (`_batch_id`), and record how far they applied in `ops.sync_state`, so no change applies twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson

from resources.hub import HubError, HubResource, Load, TableSpec

CHANGE_EVENTS = TableSpec(
    "ops.change_events",
    (
        ("source", "text"),
        ("event_id", "text"),
        ("event_type", "text"),
        ("resource_type", "text"),
        ("resource_id", "text"),
        ("resource_key", "text"),
        ("sequence_number", "bigint"),
        ("resource_version", "bigint"),
        ("occurred_at", "timestamp"),
        ("payload", "json"),
        ("transport", "text"),
        ("received_at", "timestamp"),
    ),
    ("source", "event_id"),
    merge="append",
    description="Every change message received, once per (source, event id), in arrival batches (_batch_id).",
    column_descriptions={
        "source": "The system that emitted the event: commerce, payments or warehouse.",
        "event_id": "The source's message or event id; the dedup key.",
        "resource_key": "A business key of the resource when the event has one, e.g. the SKU.",
        "sequence_number": "Order of the event among its resource's events (commerce sequenceNumber).",
        "transport": "How it arrived: poll or amqp.",
    },
)


@dataclass(frozen=True)
class ChangeEvent:
    """One change message, as every source's sensor reduces it."""

    event_id: str
    event_type: str
    resource_type: str
    resource_id: str
    occurred_at: datetime | str
    payload: dict[str, Any]
    resource_key: str | None = None
    sequence_number: int | None = None
    resource_version: int | None = None


def append_change_events(
    hub: HubResource, source: str, events: Sequence[ChangeEvent], transport: str, cursor: str | None = None
) -> Load:
    """Store `events` in one committed load; events already stored are skipped.

    `cursor`, when given, commits with the events as the sync state `events:{source}`, so the hub
    records how far the sensor has read.
    """
    received_at = datetime.now(UTC)
    with hub.load(f"events:{source}") as load:
        stage = load.stage(CHANGE_EVENTS)
        if events:
            stage.append(
                CHANGE_EVENTS.to_arrow(
                    {
                        "source": [source] * len(events),
                        "event_id": [e.event_id for e in events],
                        "event_type": [e.event_type for e in events],
                        "resource_type": [e.resource_type for e in events],
                        "resource_id": [e.resource_id for e in events],
                        "resource_key": [e.resource_key for e in events],
                        "sequence_number": [e.sequence_number for e in events],
                        "resource_version": [e.resource_version for e in events],
                        "occurred_at": [e.occurred_at for e in events],
                        "payload": [orjson.dumps(e.payload).decode() for e in events],
                        "transport": [transport] * len(events),
                        "received_at": [received_at] * len(events),
                    }
                )
            )
        if cursor is not None:
            load.advance(cursor=cursor)
    return load


def new_event_count(load: Load) -> int:
    """How many of the appended events were not stored before."""
    result = load.results.get(CHANGE_EVENTS.name)
    return result.rows_changed if result else 0


def waiting_run(instance: dg.DagsterInstance, job_name: str) -> str | None:
    """The id of a `job_name` run that was requested but has not started yet.

    A sensor that finds one asks for no other run behind it: with one writer on the hub, runs
    requested faster than they finish would pile up in the queue.
    """
    records = instance.get_run_records(
        dg.RunsFilter(
            job_name=job_name,
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING],
        ),
        limit=1,
    )
    return records[0].dagster_run.run_id if records else None


def skip_when_hub_busy(tick: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sensor tick so the DuckDB hub locked by a running step (one writer) skips it instead of failing.

    Nothing was committed, so no cursor moved and no message was acked: the next tick reads again.
    """

    @functools.wraps(tick)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return tick(*args, **kwargs)
        except HubError as exc:
            if "lock" not in str(exc).lower():
                raise
            return dg.SkipReason(f"the hub is busy with a running step, the next tick reads again: {exc}")

    return guarded
