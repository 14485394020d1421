"""The hub resource: one interface over the DuckDB (embedded) or Postgres (production) backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import sqlalchemy.engine
import sqlalchemy.exc
from pydantic import Field, PrivateAttr

from resources.hub.base import Hub, HubError, Load, MergeResult, SyncState, quoted
from resources.hub.tables import TableSpec

__all__ = [
    "HUB_POOL",
    "Hub",
    "HubError",
    "HubResource",
    "Load",
    "MergeResult",
    "SyncState",
    "TableSpec",
    "held_open",
    "open_hub",
    "quoted",
]

# Every step that writes the hub takes this Dagster concurrency pool: DuckDB has a single writer.
HUB_POOL = "hub"

# Arrow allocates from the C library's malloc rather than its bundled mimalloc, which kept what one step
# freed while the next step's frames came on top: peak RSS of a full sync at 50,000 products 810 - 837 ->
# 763 - 789 MB, no slower (docs/performance.md, tenth session). ARROW_DEFAULT_MEMORY_POOL, when set, decides.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())

ACCEPTED_URLS = (
    "duckdb:///relative/path.duckdb, duckdb:////absolute/path.duckdb, postgresql://user[:password]@host[:port]/database"
)


def open_hub(url: str) -> Hub:
    """The backend a HUB_URL names."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise HubError(f"HUB_URL is not a database URL; accepted forms: {ACCEPTED_URLS}") from None
    if parsed.drivername == "duckdb":
        if not parsed.database:
            raise HubError(f"HUB_URL names no DuckDB file; accepted forms: {ACCEPTED_URLS}")
        from resources.hub.duckdb import DuckDBHub

        return DuckDBHub(parsed.database)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        if not parsed.database:
            raise HubError(f"HUB_URL names no Postgres database; accepted forms: {ACCEPTED_URLS}")
        from resources.hub.postgres import PostgresHub

        conninfo = {
            "host": parsed.host or "127.0.0.1",
            "port": parsed.port or 5432,
            "user": parsed.username,
            "password": parsed.password,
            "dbname": parsed.database,
        }
        return PostgresHub(
            {k: v for k, v in conninfo.items() if v is not None}, parsed.render_as_string(hide_password=True)
        )
    raise HubError(f"HUB_URL scheme {parsed.drivername!r} is not supported; accepted forms: {ACCEPTED_URLS}")


class HubResource(dg.ConfigurableResource):
    """The hub: raw, core, serving, quality and ops schemas behind one interface."""

    url: str = Field(default="duckdb:///data/hub.duckdb", description="HUB_URL: where the hub lives.")

    _hub: Hub | None = PrivateAttr(default=None)

    @property
    def backend(self) -> Hub:
        if self._hub is None:
            self._hub = open_hub(self.url)
        return self._hub

    def load(self, sync_key: str) -> AbstractContextManager[Load]:
        return self.backend.load(sync_key)

    def read_frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        return self.backend.read_frame(sql, params)

    def read_batches(
        self, sql: str, params: list[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        return self.backend.read_batches(sql, params, batch_size)

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.backend.scalar(sql, params)

    def sync_state(self, sync_key: str) -> SyncState | None:
        self.backend.ensure_schemas()
        return self.backend.sync_state(sync_key)

    def row_count(self, spec: TableSpec) -> int:
        return self.backend.row_count(spec)

    def ensure_table(self, spec: TableSpec) -> None:
        self.backend.ensure_schemas()
        self.backend.ensure_table(spec)


def held_open(hub: HubResource) -> AbstractContextManager[Any]:
    """One open of an embedded hub for everything inside (DuckDB's `session`); a server hub needs none.

    Opening the DuckDB file costs tens of milliseconds, more under load; a step that reads and writes
    the hub statement by statement would pay that for each.
    """
    session = getattr(hub.backend, "session", None)
    return session() if session is not None else nullcontext()
