"""The hub interface every backend implements, and the shapes it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from resources.hub.tables import TableSpec


class HubError(RuntimeError):
    """The hub cannot be reached or written. The message names the setting and never a password."""


@dataclass(frozen=True)
class SyncState:
    """How far a sync has committed: a source watermark, an opaque cursor, and the last batch."""

    sync_key: str
    watermark: datetime | None
    cursor: str | None
    batch_id: int | None
    updated_at: datetime | None


@dataclass(frozen=True)
class MergeResult:
    table: str
    rows_staged: int
    rows_changed: int


class Stage(ABC):
    """Rows of one table waiting for the load to commit."""

    spec: TableSpec
    rows: int

    @abstractmethod
    def append(self, batch: pa.Table | pa.RecordBatch) -> None:
        """Add rows (Arrow, with the table's declared columns)."""

    @abstractmethod
    def replace_parents(self, parent_keys: pa.Array) -> None:
        """For `replace_children` tables: parents whose rows the batch replaces, even with none."""


@dataclass
class Load:
    """One atomic load: staged tables, merged together with the sync state, or not at all."""

    sync_key: str
    stages: dict[str, Stage] = field(default_factory=dict)
    watermark: datetime | None = None
    cursor: str | None = None
    batch_id: int | None = None
    results: dict[str, MergeResult] = field(default_factory=dict)
    _stage_factory: Any = None

    def stage(self, spec: TableSpec) -> Stage:
        if spec.name not in self.stages:
            self.stages[spec.name] = self._stage_factory(spec)
        return self.stages[spec.name]

    def advance(self, *, watermark: datetime | None = None, cursor: str | None = None) -> None:
        """Move the sync state on; it commits only with the data."""
        if watermark is not None:
            self.watermark = watermark if self.watermark is None else max(self.watermark, watermark)
        if cursor is not None:
            self.cursor = cursor


class Hub(ABC):
    """A hub backend: schemas raw, core, serving, quality and ops; bulk, atomic, idempotent loads."""

    url_for_humans: str

    @abstractmethod
    def ensure_schemas(self) -> None: ...

    @abstractmethod
    def ensure_table(self, spec: TableSpec) -> None: ...

    @abstractmethod
    def load(self, sync_key: str) -> AbstractContextManager[Load]:
        """Stage rows, then on a clean exit merge every stage and the sync state in one transaction."""

    @abstractmethod
    def read_frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame: ...

    @abstractmethod
    def read_batches(
        self, sql: str, params: list[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[pa.RecordBatch]: ...

    @abstractmethod
    def scalar(self, sql: str, params: list[Any] | None = None) -> Any: ...

    def table_exists(self, name: str) -> bool:
        schema, table = name.split(".")
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            )
        )

    def row_count(self, spec: TableSpec) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {quoted(spec.name)}")) if self.table_exists(spec.name) else 0

    def sync_state(self, sync_key: str) -> SyncState | None:
        frame = self.read_frame(
            "SELECT sync_key, watermark, cursor, batch_id, updated_at FROM ops.sync_state WHERE sync_key = ?",
            [sync_key],
        )
        if frame.empty:
            return None
        row = frame.iloc[0]
        return SyncState(
            sync_key=row["sync_key"],
            watermark=None if pd.isna(row["watermark"]) else row["watermark"].to_pydatetime(),
            cursor=None if pd.isna(row["cursor"]) else row["cursor"],
            batch_id=None if pd.isna(row["batch_id"]) else int(row["batch_id"]),
            updated_at=None if pd.isna(row["updated_at"]) else row["updated_at"].to_pydatetime(),
        )


# Moves a sync forward inside the load's transaction; a value left out keeps the committed one.
SYNC_STATE_UPSERT = """INSERT INTO ops.sync_state (sync_key, watermark, cursor, batch_id, updated_at)
    VALUES ({0}, {0}, {0}, {0}, {0})
    ON CONFLICT (sync_key) DO UPDATE SET
      watermark = coalesce(excluded.watermark, ops.sync_state.watermark),
      cursor = coalesce(excluded.cursor, ops.sync_state.cursor),
      batch_id = excluded.batch_id, updated_at = excluded.updated_at"""


def add_missing_columns(con: Any, spec: TableSpec, sql_types: dict[str, str], param: str) -> None:
    """Give a table made before a column was declared that column, empty (`param`: the driver's placeholder)."""
    present = con.execute(
        f"SELECT column_name FROM information_schema.columns WHERE table_schema = {param} AND table_name = {param}",
        [spec.schema, spec.table],
    ).fetchall()
    names = {name for (name,) in present}
    for column, kind in spec.all_columns:
        if column not in names:
            con.execute(f'ALTER TABLE {quoted(spec.name)} ADD COLUMN "{column}" {sql_types[kind]}')


def quoted(name: str) -> str:
    """`schema.table` as a quoted SQL name; the parts are validated identifiers."""
    return ".".join(f'"{part}"' for part in name.split("."))
