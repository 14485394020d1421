"""Materialize the commerce group into a temp DuckDB hub from the simulator over HTTP."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from assets.commerce import COMMERCE_CORE_TABLES, commerce_assets
from quality.checks import build_suite_checks
from quality.commerce import COMMERCE_SUITES
from resources.commerce import CommerceToolsResource
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.hub.postgres import PostgresHub
from tests.conftest import Simulator

CHECKS = build_suite_checks(COMMERCE_SUITES, pool=HUB_POOL)
RAW_ASSETS = [a for a in commerce_assets if all(k.path[0] == "raw" for k in a.keys)]


def run(hub: HubResource, commerce: CommerceToolsResource, *, mode: str = "full", extra=(), raise_on_error=True):
    config = {"ops": {a.op.name: {"config": {"mode": mode}} for a in RAW_ASSETS}}
    return dg.materialize(
        [*commerce_assets, *CHECKS, *extra],
        resources={"hub": hub, "commerce": commerce},
        run_config=config,
        raise_on_error=raise_on_error,
    )


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every test here runs on DuckDB and on Postgres."""
    return each_hub


def checksum(hub: HubResource, spec: TableSpec) -> tuple[int, int]:
    """Row count and a content hash of the whole table, read in key order."""
    frame = hub.read_frame(f"SELECT * FROM {spec.name} ORDER BY {', '.join(spec.primary_key)}")
    return len(frame), int(pd.util.hash_pandas_object(frame.astype(str), index=False).sum())


def checksums(hub: HubResource) -> dict[str, tuple]:
    return {t.name: checksum(hub, t) for t in COMMERCE_CORE_TABLES}


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def test_every_core_table_matches_the_simulator(simulator: Simulator, hub: HubResource, commerce):
    result = run(hub, commerce)
    assert result.success
    stats = simulator.stats()["commerce"]
    expected = {
        "core.products": stats["products"],
        "core.product_variants": stats["variants"],
        "core.prices": stats["prices"],
        "core.inventory_entries": stats["inventory_entries"],
        "core.channels": stats["channels"],
        "core.categories": stats["categories"],
        "raw.commerce_product_projections": stats["products"],
        "raw.commerce_inventory_entries": stats["inventory_entries"],
    }
    assert {table: hub.scalar(f"SELECT count(*) FROM {table}") for table in expected} == expected
    assert hub.scalar("SELECT count(DISTINCT sku) FROM core.product_variants") == stats["skus"]
    evaluations = result.get_asset_check_evaluations()
    checks = sorted(e.check_name for e in evaluations)
    # a suite and a count check per table, a threshold check for the four with row rules
    assert checks.count("counts_reconcile") == 6 and checks.count("bad_rows_within_threshold") == 4
    assert len(checks) == 16
    assert all(e.passed for e in evaluations)


def test_materializations_report_row_count_schema_and_preview(hub: HubResource, commerce):
    reported = metadata(run(hub, commerce))
    products = reported["core/products"]
    assert products["dagster/row_count"].value == hub.scalar("SELECT count(*) FROM core.products")
    assert "sku" in [c.name for c in reported["core/product_variants"]["dagster/column_schema"].schema.columns]
    preview = products["preview"].records
    assert 0 < len(preview) <= 5 and "product_id" in preview[0].data
    assert reported["raw/commerce_product_projections"]["rows_changed"].value > 0


def test_a_second_run_changes_nothing(hub: HubResource, commerce):
    run(hub, commerce)
    before = checksums(hub)
    second = metadata(run(hub, commerce))
    assert checksums(hub) == before
    assert {k: m["rows_changed"].value for k, m in second.items()} == {k: 0 for k in second}


def test_an_incremental_run_lands_exactly_the_churned_records(simulator: Simulator, hub: HubResource, commerce):
    run(hub, commerce)
    churned = simulator.admin("POST", "churn", products=20, inventory=30)
    reported = metadata(run(hub, commerce, mode="incremental"))
    assert reported["raw/commerce_product_projections"]["rows_changed"].value == 20
    assert reported["raw/commerce_inventory_entries"]["rows_changed"].value == 30
    assert reported["core/products"]["rows_changed"].value == 20
    for product_id in churned["products"]:
        api = commerce.get("product-projections", product_id)
        row = hub.read_frame("SELECT version, name FROM core.products WHERE product_id = ?", [product_id]).iloc[0]
        assert row["version"] == api["version"]
        assert api["name"]["en-US"] in row["name"]
        prices = hub.read_frame("SELECT price_id, cent_amount FROM core.prices WHERE product_id = ?", [product_id])
        api_prices = {
            p["id"]: p["value"]["centAmount"] for v in [api["masterVariant"], *api["variants"]] for p in v["prices"]
        }
        assert dict(zip(prices["price_id"], prices["cent_amount"], strict=True)) == api_prices
    for entry_id in churned["inventory"]:
        api = commerce.get("inventory", entry_id)
        row = hub.read_frame(
            "SELECT version, quantity_on_stock FROM core.inventory_entries WHERE inventory_entry_id = ?", [entry_id]
        ).iloc[0]
        assert (row["version"], row["quantity_on_stock"]) == (api["version"], api["quantityOnStock"])


def test_a_failing_source_leaves_the_hub_and_watermark_unchanged(simulator: Simulator, hub: HubResource, commerce):
    run(hub, commerce)
    before = checksums(hub)
    watermark = hub.sync_state("raw.commerce_product_projections").watermark
    simulator.admin("POST", "churn", products=30, inventory=0)
    simulator.admin("POST", "faults", faults=[{"status": 503, "every": 1}])
    failing = CommerceToolsResource(**{**commerce.model_dump(), "max_attempts": 2})
    result = run(hub, failing, mode="incremental", raise_on_error=False)
    assert not result.success
    assert checksums(hub) == before
    assert hub.sync_state("raw.commerce_product_projections").watermark == watermark


def test_core_tables_keep_one_row_per_key(hub: HubResource, commerce, simulator: Simulator):
    """Keys stay unique and not null through changes; only Postgres backs them with a primary key."""
    run(hub, commerce)
    simulator.admin("POST", "churn", products=30, inventory=30)
    run(hub, commerce)
    on_postgres = isinstance(hub.backend, PostgresHub)
    for spec in COMMERCE_CORE_TABLES:
        schema, table = spec.name.split(".")
        keys = ", ".join(spec.primary_key)
        repeated = f"SELECT count(*) FROM (SELECT {keys} FROM {spec.name} GROUP BY {keys} HAVING count(*) > 1) r"
        assert hub.scalar(repeated) == 0, spec.name
        nullable = hub.read_frame(
            "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).set_index("column_name")["is_nullable"]
        assert set(nullable[list(spec.primary_key)]) == {"NO"}, spec.name
        constraints = hub.read_frame(
            "SELECT constraint_type FROM information_schema.table_constraints"
            " WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        )
        assert ("PRIMARY KEY" in set(constraints["constraint_type"])) == on_postgres, spec.name
