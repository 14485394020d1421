"""Event sourcing: rebuild inventory positions from a snapshot plus the change events after it.

`ops.change_events` holds every commerce message. A snapshot (`ops.inventory_snapshot`) copies
`core.inventory_entries` together with the events position it already reflects: the apply cursor
of the inventory entries. Replaying takes the snapshot and applies, per entry and in
`sequence_number` order, every later event whose `resource_version` is newer than the entry's:
`InventoryEntryCreated` sets the whole entry, `InventoryEntryQuantitySet` its quantities,
`InventoryEntryDeleted` marks it deleted. The result lands in `ops.inventory_replay`, and the job
reports how many entries differ from the live `core.inventory_entries`.
"""

from typing import Any

import dagster as dg
import orjson
import pandas as pd
from pydantic import Field

from assets.commerce import INVENTORY_ENTRIES, RAW_INVENTORY_ENTRIES
from assets.landing import empty_columns, read_table
from resources.hub import HUB_POOL, HubResource, Load, TableSpec

_POSITION_COLUMNS = (
    ("inventory_entry_id", "text"),
    ("version", "bigint"),
    ("sku", "text"),
    ("supply_channel_id", "text"),
    ("quantity_on_stock", "bigint"),
    ("available_quantity", "bigint"),
    ("deleted", "bool"),
)
COMPARED = ["sku", "supply_channel_id", "quantity_on_stock", "available_quantity", "deleted"]
INVENTORY_SNAPSHOT = TableSpec(
    "ops.inventory_snapshot",
    _POSITION_COLUMNS,
    ("inventory_entry_id",),
    merge="replace",
    description="core.inventory_entries as of the events position in sync state snapshot:inventory.",
)
INVENTORY_REPLAY = TableSpec(
    "ops.inventory_replay",
    _POSITION_COLUMNS,
    ("inventory_entry_id",),
    merge="replace",
    description="Inventory positions rebuilt from the snapshot and the change events after it.",
)
SNAPSHOT_KEY = "snapshot:inventory"
APPLIED_KEY = f"apply:{RAW_INVENTORY_ENTRIES.name}"  # how far the inventory events reached the hub
EVENTS_SQL = (
    "SELECT resource_id, event_type, sequence_number, resource_version, payload FROM ops.change_events"
    " WHERE source = 'commerce' AND resource_type = 'inventory-entry' AND _batch_id > ?"
    " ORDER BY resource_id, sequence_number"
)


def live_positions(hub: HubResource) -> pd.DataFrame:
    """core.inventory_entries as positions, deleted ones included."""
    frame = read_table(
        hub,
        INVENTORY_ENTRIES,
        "SELECT inventory_entry_id, version, sku, supply_channel_id, quantity_on_stock, available_quantity,"
        " deleted_at IS NOT NULL AS deleted FROM core.inventory_entries",
    )
    return frame.reindex(columns=INVENTORY_SNAPSHOT.column_names)


def take_inventory_snapshot(hub: HubResource) -> Load:
    """Copy core.inventory_entries to ops.inventory_snapshot with the events position it reflects."""
    applied = hub.sync_state(APPLIED_KEY)
    position = applied.cursor if applied and applied.cursor else "0"
    frame = live_positions(hub)
    with hub.load(SNAPSHOT_KEY) as load:
        load.stage(INVENTORY_SNAPSHOT).append(INVENTORY_SNAPSHOT.to_arrow(_columns(frame)))
        load.advance(cursor=position)
    return load


def _columns(frame: pd.DataFrame) -> dict[str, list]:
    return {c: [None if pd.isna(v) else v for v in frame[c]] for c in INVENTORY_SNAPSHOT.column_names}


def _entry(document: dict[str, Any]) -> dict[str, Any]:
    channel = document.get("supplyChannel") or {}
    return {
        "inventory_entry_id": document["id"],
        "version": document.get("version"),
        "sku": document.get("sku"),
        "supply_channel_id": channel.get("id"),
        "quantity_on_stock": document.get("quantityOnStock"),
        "available_quantity": document.get("availableQuantity"),
        "deleted": False,
    }


def replay(snapshot: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The snapshot's positions with `events` (ordered by resource and sequence number) applied."""
    positions: dict[str, dict[str, Any]] = {row["inventory_entry_id"]: row for row in _records(snapshot)}
    for event in events.itertuples(index=False):
        entry_id, version = event.resource_id, int(event.resource_version)
        current = positions.get(entry_id)
        if current is not None and current["version"] is not None and version <= current["version"]:
            continue  # the snapshot already holds this change
        message = orjson.loads(event.payload)
        if event.event_type == "InventoryEntryCreated":
            current = _entry(message["inventoryEntry"])
        elif current is None:  # created before the snapshot yet missing from it: what the message says
            current = _entry({"id": entry_id, "sku": message.get("sku"), "supplyChannel": message.get("supplyChannel")})
        if event.event_type == "InventoryEntryQuantitySet":
            current["quantity_on_stock"] = message["newQuantityOnStock"]
            current["available_quantity"] = message["newAvailableQuantity"]
        elif event.event_type == "InventoryEntryDeleted":
            current["deleted"] = True
        current["version"] = version
        positions[entry_id] = current
    columns = empty_columns(INVENTORY_REPLAY)
    for position in positions.values():
        for name in columns:
            columns[name].append(position[name])
    return pd.DataFrame(columns).sort_values("inventory_entry_id", ignore_index=True)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def replay_inventory(hub: HubResource) -> tuple[Load, int]:
    """Rebuild ops.inventory_replay from the snapshot and the later events; returns the load and event count."""
    snapshot_state = hub.sync_state(SNAPSHOT_KEY)
    if snapshot_state is None:
        raise dg.Failure(description="no inventory snapshot yet: run replay_inventory_job with take_snapshot: true")
    snapshot = hub.read_frame(f"SELECT * FROM {INVENTORY_SNAPSHOT.name}").reindex(
        columns=INVENTORY_SNAPSHOT.column_names
    )
    events = pd.DataFrame(columns=["resource_id", "event_type", "sequence_number", "resource_version", "payload"])
    if hub.backend.table_exists("ops.change_events"):
        events = hub.read_frame(EVENTS_SQL, [int(snapshot_state.cursor or 0)])
    rebuilt = replay(snapshot, events)
    with hub.load(INVENTORY_REPLAY.name) as load:
        load.stage(INVENTORY_REPLAY).append(INVENTORY_REPLAY.to_arrow(_columns(rebuilt)))
    return load, len(events)


def differences(hub: HubResource) -> pd.DataFrame:
    """Entries whose replayed position differs from core.inventory_entries (or exists in only one)."""
    replayed = hub.read_frame(f"SELECT * FROM {INVENTORY_REPLAY.name}").reindex(columns=INVENTORY_REPLAY.column_names)
    both = replayed.merge(live_positions(hub), on="inventory_entry_id", how="outer", suffixes=("", "_live"))
    differs = pd.Series(False, index=both.index)
    for column in COMPARED:
        left, right = both[column].astype(object), both[f"{column}_live"].astype(object)
        differs |= ~((left == right) | (left.isna() & right.isna()))
    return both[differs]


class ReplayConfig(dg.Config):
    take_snapshot: bool = Field(
        default=False, description="First copy core.inventory_entries as the new snapshot, then replay from it."
    )


@dg.op(pool=HUB_POOL, description="Rebuild ops.inventory_replay from the snapshot and the later change events.")
def replay_inventory_op(context: dg.OpExecutionContext, config: ReplayConfig, hub: HubResource) -> None:
    if config.take_snapshot:
        snapshot = take_inventory_snapshot(hub)
        context.log.info(f"snapshot of {snapshot.results[INVENTORY_SNAPSHOT.name].rows_changed} entries taken")
    load, events = replay_inventory(hub)
    mismatched = differences(hub)
    context.add_output_metadata(
        {
            "events_replayed": events,
            "entries": load.results[INVENTORY_REPLAY.name].rows_changed,
            "entries_differing_from_core": len(mismatched),
            "differing_sample": dg.MetadataValue.json(sorted(mismatched["inventory_entry_id"])[:20]),
        }
    )


@dg.job(description="Rebuild inventory positions from a snapshot plus the change events after it (event sourcing).")
def replay_inventory_job():
    replay_inventory_op()
