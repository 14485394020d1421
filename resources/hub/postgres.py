"""The production hub on Postgres: COPY into temp staging tables, then set-based merges, with psycopg 3."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy.engine
from psycopg import sql as pgsql
from psycopg.types.json import set_json_loads

from resources.hub.base import SYNC_STATE_UPSERT, Hub, HubError, Load, MergeResult, Stage, quoted
from resources.hub.tables import SCHEMAS, TableSpec, check_identifier

SQL_TYPES = {
    "text": "TEXT",
    "json": "JSONB",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}

OPS_DDL = (
    "CREATE SEQUENCE IF NOT EXISTS ops.batch_ids START 1",
    """CREATE TABLE IF NOT EXISTS ops.sync_state (
        sync_key TEXT PRIMARY KEY, watermark TIMESTAMPTZ, cursor TEXT,
        batch_id BIGINT, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ops.batches (
        batch_id BIGINT PRIMARY KEY, sync_key TEXT NOT NULL,
        committed_at TIMESTAMPTZ NOT NULL, tables JSONB NOT NULL)""",
)


def _portable(sql: str) -> str:
    """The hub interface binds values with `?`; psycopg wants `%s` (and a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresHub(Hub):
    def __init__(self, conninfo: dict[str, Any], url_for_humans: str):
        self.conninfo = conninfo
        self.url_for_humans = url_for_humans
        self._ready: set[str] = set()

    def sqlalchemy_url(self) -> str:
        """The hub as a SQLAlchemy URL with the psycopg2 driver (for libraries that want one, such as GX)."""
        info = self.conninfo
        url = sqlalchemy.engine.URL.create(
            "postgresql+psycopg2", info.get("user"), info.get("password"), info["host"], info["port"], info["dbname"]
        )
        return url.render_as_string(hide_password=False)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        try:
            con = psycopg.connect(**self.conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            password = self.conninfo.get("password")
            if password:
                reason = reason.replace(password, "***")
            raise HubError(f"cannot connect to the Postgres hub at {self.url_for_humans} (HUB_URL): {reason}") from None
        set_json_loads(lambda data: data if isinstance(data, str) else bytes(data).decode(), con)
        try:
            con.execute("SET TIME ZONE 'UTC'")
            yield con
        finally:
            con.close()

    def ensure_schemas(self) -> None:
        if "*schemas*" in self._ready:
            return
        with self.connect() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(hashtext('hub-ddl'))")
            for schema in SCHEMAS:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            for ddl in OPS_DDL:
                con.execute(ddl)
        self._ready.add("*schemas*")

    def ensure_table(self, spec: TableSpec) -> None:
        if spec.name in self._ready:
            return
        columns = ", ".join(f'"{c}" {SQL_TYPES[t]}' for c, t in spec.all_columns)
        keys = ", ".join(f'"{c}"' for c in spec.primary_key)
        with self.connect() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(hashtext('hub-ddl'))")
            con.execute(f"CREATE TABLE IF NOT EXISTS {quoted(spec.name)} ({columns}, PRIMARY KEY ({keys}))")
            present = con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                [spec.schema, spec.table],
            ).fetchall()
            for column, kind in spec.all_columns:  # a table made before a column was declared gains it, empty
                if column not in {name for (name,) in present}:
                    con.execute(f'ALTER TABLE {quoted(spec.name)} ADD COLUMN "{column}" {SQL_TYPES[kind]}')
        self._ready.add(spec.name)

    @contextmanager
    def load(self, sync_key: str) -> Iterator[Load]:
        self.ensure_schemas()
        with self.connect() as con:
            load = Load(sync_key=sync_key, _stage_factory=lambda spec: _PostgresStage(self, con, spec))
            try:
                yield load
                _commit(con, load)
            finally:
                for stage in load.stages.values():
                    stage.drop()

    def read_frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self.connect() as con, con.cursor() as cur:
            cur.execute(_portable(sql), params or None)
            columns = [d.name for d in cur.description or []]
            return pd.DataFrame(cur.fetchall(), columns=columns)

    def read_batches(
        self, sql: str, params: list[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        with self.connect() as con, con.transaction(), con.cursor(name="hub_read_batches") as cur:
            cur.execute(_portable(sql), params or None)
            while rows := cur.fetchmany(batch_size):
                names = [d.name for d in cur.description]
                yield pa.RecordBatch.from_pylist([dict(zip(names, row, strict=True)) for row in rows])

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        with self.connect() as con:
            row = con.execute(_portable(sql), params or None).fetchone()
            return row[0] if row else None


class _PostgresStage(Stage):
    """A temp table on the load's connection, filled by COPY; it vanishes with the connection."""

    def __init__(self, hub: PostgresHub, con: psycopg.Connection, spec: TableSpec):
        hub.ensure_table(spec)
        self.spec, self.con, self.rows = spec, con, 0
        self.name = check_identifier(f"stage_{spec.schema}_{spec.table}")
        columns = ", ".join(f'"{c}" {SQL_TYPES[t]}' for c, t in spec.columns)
        con.execute(f'DROP TABLE IF EXISTS "{self.name}"')
        con.execute(f'CREATE TEMP TABLE "{self.name}" ({columns})')
        self.parents: str | None = None

    def append(self, batch: pa.Table | pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        table = table.select(self.spec.column_names).cast(self.spec.arrow_schema)
        self._copy(self.name, self.spec.column_names, table)
        self.rows += table.num_rows

    def replace_parents(self, parent_keys: pa.Array) -> None:
        if self.parents is None:
            self.parents = f"{self.name}_parents"
            self.con.execute(f'DROP TABLE IF EXISTS "{self.parents}"')
            self.con.execute(f'CREATE TEMP TABLE "{self.parents}" (parent_key TEXT)')
        self._copy(self.parents, ["parent_key"], pa.table({"parent_key": pa.array(parent_keys, pa.string())}))

    def _copy(self, table_name: str, columns: list[str], table: pa.Table) -> None:
        """COPY in CSV written by Arrow: several times faster than a Python `write_row` per row.

        Arrow quotes every string, so an empty string stays one and only a missing value is NULL.
        """
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            pgsql.Identifier(table_name), pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
        )
        options = pa_csv.WriteOptions(include_header=False)
        with self.con.cursor() as cur, cur.copy(statement) as copy:
            for batch in table.to_batches(max_chunksize=50_000):
                chunk = io.BytesIO()
                pa_csv.write_csv(batch, chunk, write_options=options)
                copy.write(chunk.getbuffer())

    def merge(self, batch_id: int, loaded_at: datetime) -> MergeResult:
        spec, target = self.spec, quoted(self.spec.name)
        columns = ", ".join(f'"{c}"' for c, _ in spec.all_columns)
        select = ", ".join(f'"{c}"' for c in spec.column_names)
        if spec.merge == "replace":
            self.con.execute(f"DELETE FROM {target}")
            changed = self.con.execute(
                f'INSERT INTO {target} ({columns}) SELECT {select}, %s, %s FROM "{self.name}"', [batch_id, loaded_at]
            )
            return MergeResult(spec.name, self.rows, changed.rowcount)
        if spec.merge == "replace_children":
            parent = f'"{spec.parent_key}"'
            parents = f'SELECT {parent} FROM "{self.name}"'
            if self.parents:
                parents += f' UNION SELECT parent_key FROM "{self.parents}"'
            self.con.execute(f"DELETE FROM {target} WHERE {parent} IN ({parents})")
            cur = self.con.execute(
                f'INSERT INTO {target} ({columns}) SELECT {select}, %s, %s FROM "{self.name}"', [batch_id, loaded_at]
            )
            return MergeResult(spec.name, self.rows, cur.rowcount)
        keys = ", ".join(f'"{c}"' for c in spec.primary_key)
        order = f'{keys}, "{spec.version_column}" DESC' if spec.version_column else keys
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c, _ in spec.all_columns if c not in spec.primary_key)
        if spec.version_column:
            changed_when = f'excluded."{spec.version_column}" > {target}."{spec.version_column}"'
        else:
            changed_when = " OR ".join(f'excluded."{c}" IS DISTINCT FROM {target}."{c}"' for c in spec.compared_columns)
        on_conflict = "DO NOTHING" if spec.merge == "append" else f"DO UPDATE SET {updates} WHERE {changed_when}"
        cur = self.con.execute(
            f"""INSERT INTO {target} ({columns})
                SELECT DISTINCT ON ({keys}) {select}, %s, %s FROM "{self.name}" ORDER BY {order}
                ON CONFLICT ({keys}) {on_conflict}""",
            [batch_id, loaded_at],
        )
        return MergeResult(spec.name, self.rows, cur.rowcount)

    def drop(self) -> None:
        if self.con.closed:
            return
        for name in (self.name, self.parents):
            if name:
                self.con.execute(f'DROP TABLE IF EXISTS "{name}"')


def _commit(con: psycopg.Connection, load: Load) -> None:
    """Lock the targets, take a batch id, merge every stage and move the sync state: one transaction.

    Locking first means batch ids reach each table in commit order, so a cursor on `_batch_id`
    never skips a batch that commits late.
    """
    loaded_at = datetime.now(UTC)
    with con.transaction():
        for name in sorted(load.stages):
            con.execute(f"LOCK TABLE {quoted(name)} IN SHARE ROW EXCLUSIVE MODE")
        batch_id = con.execute("SELECT nextval('ops.batch_ids')").fetchone()[0]
        results = {name: stage.merge(batch_id, loaded_at) for name, stage in load.stages.items()}
        summary = {r.table: {"staged": r.rows_staged, "changed": r.rows_changed} for r in results.values()}
        con.execute(
            "INSERT INTO ops.batches VALUES (%s, %s, %s, %s)",
            [batch_id, load.sync_key, loaded_at, json.dumps(summary)],
        )
        con.execute(
            SYNC_STATE_UPSERT.format("%s"),
            [load.sync_key, load.watermark, load.cursor, batch_id, loaded_at],
        )
    load.batch_id, load.results = batch_id, results
