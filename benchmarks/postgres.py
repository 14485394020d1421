"""The Postgres hub: a database of its own per run, and its load path against `pandas.to_sql`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy

from resources.hub import HubResource, TableSpec


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on `server_url`'s server, dropped afterwards."""
    server = sqlalchemy.engine.make_url(server_url)
    database = f"hub_bench_{uuid.uuid4().hex[:12]}"
    admin = dict(host=server.host or "127.0.0.1", port=server.port or 5432, user=server.username,
                 password=server.password, dbname=server.database)  # fmt: skip
    admin = {k: v for k, v in admin.items() if v is not None}
    with psycopg.connect(**admin, autocommit=True, connect_timeout=5) as con:
        con.execute(f'CREATE DATABASE "{database}"')
    try:
        yield server.set(database=database).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def hub_upsert_seconds(url: str, spec: TableSpec, table: pa.Table) -> dict[str, float]:
    """Seconds to load `table` through the hub (COPY into a stage, then merge): new rows, then every row updated."""
    hub = HubResource(url=url)
    timings = {}
    for name, batch in (("insert", table), ("upsert", _next_version(spec, table))):
        started = time.perf_counter()
        with hub.load(f"bench:{name}") as load:
            stage = load.stage(spec)
            for chunk in batch.to_batches(max_chunksize=50_000):
                stage.append(chunk)
        timings[name] = time.perf_counter() - started
        if load.results[spec.name].rows_changed != table.num_rows:
            raise RuntimeError(f"{name}: {load.results[spec.name].rows_changed} of {table.num_rows} rows changed")
    return timings


def to_sql_seconds(url: str, table: pa.Table) -> float:
    """Seconds for `pandas.DataFrame.to_sql` (its default method) to write the same rows."""
    frame = table.to_pandas()
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        started = time.perf_counter()
        frame.to_sql("to_sql_rows", engine, schema="public", if_exists="replace", index=False, chunksize=50_000)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def _next_version(spec: TableSpec, table: pa.Table) -> pa.Table:
    """The same rows, each one version newer, so the merge updates every one of them."""
    column = spec.version_column
    index = table.schema.get_field_index(column)
    return table.set_column(index, column, pc.add(table[column], pa.scalar(1, table.schema.field(column).type)))


def read_arrow(hub: HubResource, spec: TableSpec) -> pa.Table:
    """A hub table's declared columns as Arrow."""
    columns = ", ".join(f'"{c}"' for c in spec.column_names)
    batches = list(hub.read_batches(f"SELECT {columns} FROM {spec.name}", batch_size=100_000))
    return pa.Table.from_batches(batches).cast(spec.arrow_schema)
