"""A full sync into DuckDB and into Postgres gives the same core and serving contents, key by key."""

import hashlib
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dagster_project.definitions import defs
from pipelines.jobs import analytics_daily_job, full_sync_job
from resources.hub import HubResource, TableSpec
from simulators.feeds import write_supplier_feed
from simulators.world import World
from tests.conftest import DEFAULT_PRODUCTS, DEFAULT_SEED, Simulator, every_resource, postgres_hub
from tests.test_serving_contracts import declared_serving_tables


def hub_tables() -> list[TableSpec]:
    """Every core table of the four source systems, and every serving table."""
    import assets.analytics
    import assets.commerce
    import assets.orders
    import assets.payments
    import assets.warehouse

    core = [
        *assets.commerce.COMMERCE_CORE_TABLES,
        *assets.orders.ORDERS_CORE_TABLES,
        *assets.payments.PAYMENTS_CORE_TABLES,
        *assets.warehouse.WAREHOUSE_CORE_TABLES,
        *assets.analytics.ANALYTICS_CORE_TABLES,
    ]
    return [*core, *declared_serving_tables().values()]


# Stamped with the run's own clock, so they differ between any two runs.
RUN_CLOCK_COLUMNS = {"computed_at", "horizon_at"}


def normalized(hub: HubResource, spec: TableSpec) -> pd.DataFrame:
    """The table in key order, batch and run-clock columns left out, values in one text form for both backends."""
    compared = [(name, kind) for name, kind in spec.columns if name not in RUN_CLOCK_COLUMNS]
    columns = ", ".join(name for name, _ in compared)
    frame = hub.read_frame(f"SELECT {columns} FROM {spec.name} ORDER BY {', '.join(spec.primary_key)}")
    for name, kind in compared:
        if kind == "json":
            frame[name] = [None if v is None else json.dumps(json.loads(v), sort_keys=True) for v in frame[name]]
        elif kind == "timestamp":
            frame[name] = [None if pd.isna(v) else pd.Timestamp(v).tz_convert("UTC").isoformat() for v in frame[name]]
        elif kind in ("bigint", "int"):
            frame[name] = [None if pd.isna(v) else str(int(v)) for v in frame[name]]
        elif kind == "double":
            frame[name] = [None if pd.isna(v) else f"{float(v):.9g}" for v in frame[name]]
        else:
            frame[name] = [None if pd.isna(v) else str(v) for v in frame[name]]
    return frame


# Tables a default simulator world can legitimately leave empty.
MAY_BE_EMPTY: set[str] = set()


def table_checksum(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def full_sync(hub: HubResource, simulator: Simulator, landing: Path) -> None:
    """A supplier feed dropped, the nightly full sync, then the last two analytics days."""
    write_supplier_feed(landing, "2026-11-02", World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS), bad_rows=3)
    local = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[full_sync_job, analytics_daily_job],
        resources=every_resource(simulator, hub, landing),
    )
    with dg.instance_for_test() as instance:
        assert local.resolve_job_def("full_sync_job").execute_in_process(instance=instance).success
        analytics = local.resolve_job_def("analytics_daily_job")
        for day in analytics.partitions_def.get_partition_keys()[-2:]:
            assert analytics.execute_in_process(instance=instance, partition_key=day).success


@pytest.mark.slow
def test_duckdb_and_postgres_hold_the_same_core_and_serving(simulator: Simulator, hub: HubResource, tmp_path):
    with postgres_hub() as postgres:
        full_sync(hub, simulator, tmp_path / "duckdb")
        full_sync(postgres, simulator, tmp_path / "postgres")
        for spec in hub_tables():
            embedded, production = normalized(hub, spec), normalized(postgres, spec)
            assert not embedded.empty or spec.name in MAY_BE_EMPTY, f"{spec.name} is empty: nothing was compared"
            keys = list(spec.primary_key)
            assert embedded[keys].equals(production[keys]), f"{spec.name}: key sets differ"
            if table_checksum(embedded) != table_checksum(production):
                merged = embedded.merge(production, how="outer", indicator=True)
                differing = merged[merged["_merge"] != "both"].head(4).T.to_string()
                raise AssertionError(f"{spec.name}: contents differ (left: DuckDB, right: Postgres)\n{differing}")
