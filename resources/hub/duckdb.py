"""The embedded hub: one DuckDB file. DuckDB allows one writer, so hub writers share a Dagster pool."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from resources.hub.base import SYNC_STATE_UPSERT, Hub, HubError, Load, MergeResult, Stage, add_missing_columns, quoted
from resources.hub.tables import SCHEMAS, TableSpec, check_identifier

SQL_TYPES = {
    "text": "VARCHAR",
    "json": "JSON",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}

# DuckDB's memory_limit for the hub (HUB_DUCKDB_MEMORY_LIMIT overrides it). Beyond it DuckDB spills to
# `<hub file>.tmp/`: a load's stage holds the whole source until it merges (700,000 inventory documents
# at 50,000 products), so with DuckDB's default (80% of RAM) a process's memory grows with the catalog.
DEFAULT_MEMORY_LIMIT = "256MB"
MEMORY_LIMIT_SETTING = "HUB_DUCKDB_MEMORY_LIMIT"

# Staged rows are buffered in Arrow and inserted into the temp table once this many bytes wait: large
# enough for few inserts, small enough that the buffers of a load's several stages stay small.
STAGE_FLUSH_BYTES = 8 * 1024 * 1024

# Rows per row group of the hub's tables (DuckDB's default: 122,880). DuckDB writes a large insert's full
# row groups straight to the file, compressed, and the rest to the WAL, which the next checkpoint writes
# again: 50,000 product documents (187 MB) went through the WAL whole, 0.4 s to write it and 0.4 s to
# checkpoint it; in row groups of this size they are written once (insert 1.0 s -> 0.6 s, no checkpoint).
ROW_GROUP_ROWS = 16_384
# What the hub file is attached as in its DuckDB instance; every connection uses it.
CATALOG = "hub"

# An upsert changing more stored rows than this updates them in place rather than deleting and
# inserting them again (see `_DuckDBStage._upsert`).
UPDATE_IN_PLACE_ROWS = 50_000

OPS_DDL = (
    "CREATE SEQUENCE IF NOT EXISTS ops.batch_ids START 1",
    """CREATE TABLE IF NOT EXISTS ops.sync_state (
        sync_key VARCHAR PRIMARY KEY, watermark TIMESTAMPTZ, cursor VARCHAR,
        batch_id BIGINT, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ops.batches (
        batch_id BIGINT PRIMARY KEY, sync_key VARCHAR NOT NULL,
        committed_at TIMESTAMPTZ NOT NULL, tables JSON NOT NULL)""",
)


class _Instances:
    """The process's DuckDB instance of each hub file, shared by whatever uses the file, closed after the last.

    `duckdb.connect(path)` shares its instances so too, but cannot give the file a row group size, which is an
    option of ATTACH: so each hub file is attached to an in-memory instance of its own, with its own memory
    limit and spill directory, as `duckdb.connect(path)` gave it. While an instance is closed, other processes
    may open the file.
    """

    @dataclass
    class _Open:
        instance: duckdb.DuckDBPyConnection
        users: int = 0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Path, _Instances._Open] = {}  # by resolved path

    @contextmanager
    def using(
        self, path: Path, open_instance: Callable[[], duckdb.DuckDBPyConnection]
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        key = path.resolve()
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                entry = self._open[key] = self._Open(open_instance())
            entry.users += 1
        try:
            yield entry.instance
        finally:
            with self._lock:
                entry.users -= 1
                if entry.users == 0:
                    del self._open[key]
                    entry.instance.close()

    @contextmanager
    def cursor(
        self, path: Path, open_instance: Callable[[], duckdb.DuckDBPyConnection]
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own (own transaction, own temp tables) to the file's instance."""
        with self.using(path, open_instance) as instance:
            with self._lock:
                con = instance.cursor()
            try:
                con.execute(f"USE {CATALOG}")  # a cursor starts in the in-memory catalog
                yield con
            finally:
                con.close()


_INSTANCES = _Instances()


class DuckDBHub(Hub):
    def __init__(self, path: str):
        self.path = Path(path)
        self.url_for_humans = f"duckdb:///{path}"
        self._ready: set[str] = set()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """An in-memory instance with the hub file attached, as `CATALOG`, in row groups of `ROW_GROUP_ROWS`."""
        con = duckdb.connect()
        limit = os.environ.get(MEMORY_LIMIT_SETTING) or DEFAULT_MEMORY_LIMIT
        try:
            con.execute(f"SET memory_limit = '{limit.replace(chr(39), '')}'")
        except duckdb.Error as exc:
            con.close()
            reason = str(exc).splitlines()[0]
            setting = f"{MEMORY_LIMIT_SETTING}={limit!r}"
            raise HubError(f"{setting} is not a DuckDB memory limit such as 512MB: {reason}") from None
        file = str(self.path).replace("'", "''")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"SET temp_directory = '{file}.tmp'")  # where DuckDB spills for a file it opens itself
            con.execute(f"ATTACH '{file}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
        except (OSError, duckdb.Error) as exc:
            con.close()
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
            raise HubError(f"cannot open the DuckDB hub at {self.path} (HUB_URL): {reason}") from None
        return con

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep the file open until the outermost session ends: connections inside it are cheap cursors.

        Opening the file reads its catalog and metadata, which takes longer as the hub grows (15 ms at
        1,000 products, 30 ms at 50,000, more under load); a step that opens it a hundred times pays that
        a hundred times. Outside a session each connection opens and closes the file, so other
        processes can take it between two statements, as before.
        """
        with _INSTANCES.using(self.path, self._open):
            yield

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with _INSTANCES.cursor(self.path, self._open) as con:
            con.execute("SET TimeZone = 'UTC'")
            yield con

    def ensure_schemas(self) -> None:
        if "*schemas*" in self._ready:  # once per process: every open of the file costs
            return
        with self.connect() as con:
            for schema in SCHEMAS:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            for ddl in OPS_DDL:
                con.execute(ddl)
        self._ready.add("*schemas*")

    def ensure_table(self, spec: TableSpec) -> None:
        if spec.name in self._ready:
            return
        with self.connect() as con:
            con.execute(_create_table_sql(spec))
            add_missing_columns(con, spec, SQL_TYPES, "?")
        self._ready.add(spec.name)

    @contextmanager
    def load(self, sync_key: str) -> Iterator[Load]:
        self.ensure_schemas()
        with self.connect() as con:
            load = Load(sync_key=sync_key, _stage_factory=lambda spec: _DuckDBStage(self, con, spec))
            try:
                yield load
                _commit(con, load)
            finally:
                for stage in load.stages.values():
                    stage.drop()

    def read_frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self.connect() as con:
            return _frame(con.sql(sql, params=params or None).to_arrow_table())

    def read_batches(
        self, sql: str, params: list[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        with self.connect() as con:
            reader = con.sql(sql, params=params or None).to_arrow_reader(batch_size)
            yield from reader

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        with self.connect() as con:
            row = con.execute(sql, params or []).fetchone()
            return row[0] if row else None


class _DuckDBStage(Stage):
    """A temporary table on the load's connection: it vanishes with the connection, even on a crash."""

    def __init__(self, hub: DuckDBHub, con: duckdb.DuckDBPyConnection, spec: TableSpec):
        hub.ensure_table(spec)
        self.spec, self.con, self.rows = spec, con, 0
        self.name = check_identifier(f"stage_{spec.schema}_{spec.table}")
        columns = ", ".join(f'"{c}" {SQL_TYPES[t]}' for c, t in spec.columns)
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{self.name}" ({columns})')
        self.parents: str | None = None
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0

    def append(self, batch: pa.Table | pa.RecordBatch) -> None:
        """Buffer the rows; they reach the temp table in few large inserts (one per page is slow)."""
        if batch.num_rows == 0:
            return
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        table = self.spec.conformed(table)
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_bytes >= STAGE_FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Insert the buffered rows into the temp table."""
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_bytes = [], 0
        self.con.register("_incoming", table)
        try:
            self.con.execute(f'INSERT INTO "{self.name}" SELECT * FROM _incoming')
        finally:
            self.con.unregister("_incoming")

    def replace_parents(self, parent_keys: pa.Array) -> None:
        if self.parents is None:
            self.parents = f"{self.name}_parents"
            self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{self.parents}" (parent_key VARCHAR)')
        keys = pa.table({"parent_key": pa.array(parent_keys, pa.string())})
        self.con.register("_parents", keys)
        try:
            self.con.execute(f'INSERT INTO "{self.parents}" SELECT parent_key FROM _parents')
        finally:
            self.con.unregister("_parents")

    def merge(self, batch_id: int, loaded_at: datetime) -> MergeResult:
        spec, target = self.spec, quoted(self.spec.name)
        columns = ", ".join(f'"{c}"' for c, _ in spec.all_columns)
        select = ", ".join(f'"{c}"' for c in spec.column_names)
        if spec.merge == "replace":
            # Recreated, not emptied: a DELETE of every row then the INSERT keep both row sets and both
            # versions of the key index until the commit, beyond the memory limit on a large table
            # (705,000 inventory positions at 256MB); a new table holds only the new rows.
            self.con.execute(f"DROP TABLE {target}")
            self.con.execute(_create_table_sql(spec))
            changed = self.con.execute(
                f'INSERT INTO {target} ({columns}) SELECT {select}, ?, ? FROM "{self.name}"', [batch_id, loaded_at]
            )
            return MergeResult(spec.name, self.rows, int(changed.fetchone()[0]))
        if spec.merge == "replace_children":
            parent = f'"{spec.parent_key}"'
            parents = f'SELECT DISTINCT {parent} FROM "{self.name}"'
            if self.parents:
                parents += f' UNION SELECT parent_key FROM "{self.parents}"'
            self.con.execute(f"DELETE FROM {target} WHERE {parent} IN ({parents})")
            changed = self.con.execute(
                f'INSERT INTO {target} ({columns}) SELECT {select}, ?, ? FROM "{self.name}"',
                [batch_id, loaded_at],
            ).fetchone()[0]
            return MergeResult(spec.name, self.rows, int(changed))
        return MergeResult(spec.name, self.rows, self._upsert(batch_id, loaded_at))

    def _upsert(self, batch_id: int, loaded_at: datetime) -> int:
        """Set-based upsert: one row per key from the stage; changed rows replaced, new rows inserted.

        Joins are several times faster in DuckDB than `INSERT ... ON CONFLICT` and cost next to nothing
        when nothing changed. A few changed rows are deleted and inserted again: the checkpoint after an
        `UPDATE` rewrites every updated column of the touched row groups (1.6 s for 100 new documents
        in a 50,000-row raw table), after a delete and an append only the new rows. Many changed rows
        are updated in place: deleting and inserting them keeps both copies and both key index
        versions until the commit, beyond the memory limit (1.4 million at 256MB).
        """
        spec, target, stage = self.spec, quoted(self.spec.name), f'"{self.name}"'
        keys = ", ".join(f'"{c}"' for c in spec.primary_key)
        # Newest version wins; of equal versions the first staged (as on Postgres).
        order = f'"{spec.version_column}" DESC, rowid' if spec.version_column else "rowid"
        self.con.execute(
            f"""DELETE FROM {stage} WHERE rowid IN (SELECT rowid FROM (
                    SELECT rowid, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS copy FROM {stage}
                ) WHERE copy > 1)"""
        ).fetchall()
        same_key = " AND ".join(f'{target}."{c}" = s."{c}"' for c in spec.primary_key)
        changed = 0
        if spec.merge != "append":
            if spec.version_column:
                changed_when = f's."{spec.version_column}" > {target}."{spec.version_column}"'
            else:
                changed_when = " OR ".join(f's."{c}" IS DISTINCT FROM {target}."{c}"' for c in spec.compared_columns)
            to_change = self.con.execute(
                f"SELECT count(*) FROM {stage} AS s JOIN {target} ON {same_key} WHERE {changed_when}"
            ).fetchone()[0]
            if to_change > UPDATE_IN_PLACE_ROWS:
                values = ", ".join(f'"{c}" = s."{c}"' for c in spec.column_names if c not in spec.primary_key)
                self.con.execute(
                    f"""UPDATE {target} SET {values}, "_batch_id" = ?, "_loaded_at" = ?
                        FROM {stage} AS s WHERE {same_key} AND ({changed_when})""",
                    [batch_id, loaded_at],
                )
                changed = to_change
            elif to_change:
                self.con.execute(f"DELETE FROM {target} USING {stage} AS s WHERE {same_key} AND ({changed_when})")
        columns = ", ".join(f'"{c}"' for c, _ in spec.all_columns)
        select = ", ".join(f's."{c}"' for c in spec.column_names)
        inserted = self.con.execute(
            f"""INSERT INTO {target} ({columns}) SELECT {select}, ?, ? FROM {stage} AS s
                WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {same_key})""",
            [batch_id, loaded_at],
        ).fetchone()[0]
        return changed + int(inserted)

    def drop(self) -> None:
        self._pending, self._pending_bytes = [], 0
        for name in (self.name, self.parents):
            if name:
                self.con.execute(f'DROP TABLE IF EXISTS "{name}"')


def _commit(con: duckdb.DuckDBPyConnection, load: Load) -> None:
    """Merge every stage, record the batch and move the sync state, in one transaction."""
    loaded_at = datetime.now(UTC)
    for stage in load.stages.values():
        stage.flush()
    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = con.execute("SELECT nextval('ops.batch_ids')").fetchone()[0]
        results = {name: stage.merge(batch_id, loaded_at) for name, stage in load.stages.items()}
        summary = {r.table: {"staged": r.rows_staged, "changed": r.rows_changed} for r in results.values()}
        con.execute(
            "INSERT INTO ops.batches VALUES (?, ?, ?, ?)",
            [batch_id, load.sync_key, loaded_at, json.dumps(summary)],
        )
        con.execute(
            SYNC_STATE_UPSERT.format("?"),
            [load.sync_key, load.watermark, load.cursor, batch_id, loaded_at],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    load.batch_id, load.results = batch_id, results


# Integer and boolean columns holding nulls become pandas' nullable types, as DuckDB's own `.df()` makes them.
_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _frame(table: pa.Table) -> pd.DataFrame:
    """A query result through Arrow into pandas, with the column types DuckDB's `.df()` gives.

    `.df()` builds its text columns five times slower (527,000 prices: 0.45 s against 0.08 s).
    Decimals (sums of integers) become floats, dates timestamps and the text columns of no rows objects, as there.
    """
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.float64()))
        elif pa.types.is_date(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.timestamp("us")))
    frame = table.to_pandas()
    for field in table.schema:
        if field.type in _NULLABLE and table.column(field.name).null_count:
            frame[field.name] = table.column(field.name).to_pandas(types_mapper=_NULLABLE.get)
        elif not table.num_rows and pa.types.is_string(field.type):
            frame[field.name] = frame[field.name].astype(object)
    return frame


def _create_table_sql(spec: TableSpec) -> str:
    def column(name: str, kind: str) -> str:
        zstd = " USING COMPRESSION zstd" if name in spec.zstd_columns else ""
        not_null = " NOT NULL" if name in spec.primary_key and not spec.has_key_index else ""
        return f'"{name}" {SQL_TYPES[kind]}{zstd}{not_null}'

    columns = ", ".join(column(c, t) for c, t in spec.all_columns)
    if spec.has_key_index:  # without it, the merge alone keeps one row per key (the hub has one writer)
        columns += f", PRIMARY KEY ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in spec.primary_key)})"
    return f"CREATE TABLE IF NOT EXISTS {quoted(spec.name)} ({columns})"
