"""A full sync into DuckDB and into Postgres gives the same core contents, key by key."""

import hashlib
import json

import pandas as pd

from assets.commerce import COMMERCE_CORE_TABLES
from resources.hub import HubResource, TableSpec
from tests.assets.test_commerce_assets import run
from tests.conftest import postgres_hub


def normalized(hub: HubResource, spec: TableSpec) -> pd.DataFrame:
    """The table in key order, batch columns left out, values in one text form for both backends."""
    columns = ", ".join(spec.column_names)
    frame = hub.read_frame(f"SELECT {columns} FROM {spec.name} ORDER BY {', '.join(spec.primary_key)}")
    for name, kind in spec.columns:
        if kind == "json":
            frame[name] = [None if v is None else json.dumps(json.loads(v), sort_keys=True) for v in frame[name]]
        elif kind == "timestamp":
            frame[name] = [None if pd.isna(v) else pd.Timestamp(v).tz_convert("UTC").isoformat() for v in frame[name]]
        else:
            frame[name] = [None if pd.isna(v) else str(v) for v in frame[name]]
    return frame


def table_checksum(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def test_duckdb_and_postgres_hold_the_same_core(simulator, hub: HubResource, commerce):
    with postgres_hub() as postgres:
        assert run(hub, commerce).success
        assert run(postgres, commerce).success
        for spec in COMMERCE_CORE_TABLES:
            embedded, production = normalized(hub, spec), normalized(postgres, spec)
            keys = list(spec.primary_key)
            assert embedded[keys].equals(production[keys]), f"{spec.name}: key sets differ"
            assert table_checksum(embedded) == table_checksum(production), f"{spec.name}: contents differ"
