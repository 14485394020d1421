"""The suite check as Dagster runs it, on a real DuckDB hub file: its result, history and Data Docs page."""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quality.checks import build_suite_check, build_suite_checks
from quality.commerce import COMMERCE_SUITES, inventory_entries_suite, prices_suite
from quality.config import QualityRules
from quality.paths import data_docs_dir, quality_dir
from resources.hub import HubResource

NEGATIVE_CENTS = "failed: expect_column_values_to_be_between(cent_amount, min_value=0)"


PRICES_DDL = """
CREATE SCHEMA IF NOT EXISTS core;
CREATE TABLE core.prices (
    price_id TEXT, product_id TEXT, variant_id INTEGER, sku TEXT, currency TEXT,
    cent_amount BIGINT, fraction_digits INTEGER, country TEXT, channel_id TEXT,
    valid_from TIMESTAMPTZ, valid_until TIMESTAMPTZ, _batch_id BIGINT
);
INSERT INTO core.prices VALUES
    ('pr-1', 'p1', 1, 'ABC-000001-01', 'EUR', 1999, 2, 'DE', NULL, NULL, NULL, 1),
    ('pr-2', 'p1', 2, 'ABC-000001-02', 'USD', 2450, 2, 'US', NULL, NULL, NULL, 1),
    ('pr-3', 'p2', 1, 'XYZ-000002-01', 'JPY', 1200, 0, 'JP', 'ch-1', NULL, NULL, 2);
"""


def make_hub(tmp_path: Path, *statements: str) -> HubResource:
    path = tmp_path / "hub.duckdb"
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return HubResource(url=f"duckdb:///{path}")


@dg.asset(key=["core", "prices"])
def core_prices() -> None:
    return None


@dg.asset(deps=[core_prices])
def price_list() -> None:
    return None


def run_prices_check(hub: HubResource) -> dg.ExecuteInProcessResult:
    check = build_suite_check(prices_suite, ["core", "prices"])
    return dg.materialize([core_prices, price_list, check], resources={"hub": hub}, raise_on_error=False)


def test_passing_data_passes_the_check(tmp_path):
    result = run_prices_check(make_hub(tmp_path, PRICES_DDL))
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.check_name == "prices_suite"
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert meta["pass_rate"] == 1.0
    assert isinstance(meta["pass_rate"], float)
    assert meta["rows_checked"] == 3
    assert meta["expectations_failed"] == 0
    assert meta["expectations_passed"] == len(prices_suite.expectations({})) + len(prices_suite.rows(QualityRules()))
    assert meta["unexpected_rows"] == 0
    assert not [k for k in meta if k.startswith("failed: ")]
    assert result.asset_materializations_for_node("price_list")


def test_bad_row_fails_the_check_and_blocks_downstream(tmp_path):
    bad_row = (
        "INSERT INTO core.prices VALUES ('pr-bad', 'p3', 1, 'QRS-000003-01', 'EUR', -500, 2, 'DE', NULL, NULL, NULL, 3)"
    )
    result = run_prices_check(make_hub(tmp_path, PRICES_DDL, bad_row))
    assert not result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert meta["rows_checked"] == 4
    assert meta["expectations_failed"] == 1
    assert meta["unexpected_rows"] == 1
    assert meta["pass_rate"] == pytest.approx(meta["expectations_passed"] / (meta["expectations_passed"] + 1))
    failed = evaluation.metadata[NEGATIVE_CENTS].data
    assert failed["unexpected_count"] == 1
    assert failed["failing_keys"] == [{"price_id": "pr-bad", "sku": "QRS-000003-01"}]
    assert "cent_amount" in evaluation.description
    # Blocking: the checked asset is recorded, the asset downstream of it never runs.
    assert result.asset_materializations_for_node("core__prices")
    assert not result.asset_materializations_for_node("price_list")
    price_list_steps = [e for e in result.all_events if e.step_key == "price_list"]
    assert not any(e.is_step_success for e in price_list_steps)


def test_every_check_run_appends_its_validation_history_and_data_docs_page(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path / "quality"))
    bad_row = (
        "INSERT INTO core.prices VALUES ('pr-bad', 'p3', 1, 'QRS-000003-01', 'EUR', -500, 2, 'DE', NULL, NULL, NULL, 3)"
    )
    hub = make_hub(tmp_path, PRICES_DDL, bad_row)
    first, second = run_prices_check(hub), run_prices_check(hub)
    history = hub.read_frame("SELECT * FROM quality.validation_runs ORDER BY validated_at, expectation")
    assert set(history["run_id"]) == {first.run_id, second.run_id}
    runs = history[history.run_id == first.run_id].set_index("expectation")
    assert len(runs) == len(prices_suite.expectations({})) + len(prices_suite.rows(QualityRules()))
    negative = runs.loc["expect_column_values_to_be_between(cent_amount, min_value=0)"]
    assert (negative.dataset, negative.table_name, negative.column_name) == (
        "prices_suite",
        "core.prices",
        "cent_amount",
    )
    assert not negative.success and negative.unexpected_count == 1 and negative.element_count == 4
    assert negative.batch_id == 3
    assert runs.loc["expect_table_row_count_to_be_between(min_value=1)"].observed_value == "4"
    assert runs["success"].sum() == len(runs) - 1
    # One Data Docs page per validation, under the configured directory, linked from the check.
    pages = set(history["data_docs_path"])
    assert len(pages) == 2 and all((quality_dir() / page).is_file() for page in pages)
    assert (data_docs_dir() / "index.html").is_file()
    [evaluation] = first.get_asset_check_evaluations()
    assert evaluation.metadata["data_docs"].value == str(quality_dir() / runs["data_docs_path"].iloc[0])
    assert evaluation.metadata["quality_report"].value == str(quality_dir() / "index.html")


def test_empty_table_fails(tmp_path):
    result = run_prices_check(make_hub(tmp_path, PRICES_DDL, "DELETE FROM core.prices"))
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["rows_checked"].value == 0
    row_count = evaluation.metadata["failed: expect_table_row_count_to_be_between(min_value=1)"].data
    assert row_count["observed_value"] == 0


def test_inventory_check_reads_its_reference_through_the_hub(tmp_path):
    hub = make_hub(
        tmp_path,
        "CREATE SCHEMA core",
        "CREATE TABLE core.product_variants (product_id TEXT, variant_id INTEGER, sku TEXT, _batch_id BIGINT)",
        "INSERT INTO core.product_variants VALUES ('p1', 1, 'ABC-000001-01', 1), ('p1', 2, NULL, 1)",
        """CREATE TABLE core.inventory_entries (inventory_entry_id TEXT, sku TEXT,
            supply_channel_id TEXT, quantity_on_stock BIGINT, available_quantity BIGINT, _batch_id BIGINT)""",
        """INSERT INTO core.inventory_entries VALUES
            ('ie-1', 'ABC-000001-01', 'ch-1', 5, 5, 1), ('ie-2', 'ORP-000009-01', 'ch-1', 1, 1, 1)""",
    )

    @dg.asset(key=["core", "inventory_entries"])
    def core_inventory() -> None:
        return None

    [check] = build_suite_checks([inventory_entries_suite])
    result = dg.materialize([core_inventory, check], resources={"hub": hub}, raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    failed = evaluation.metadata["failed: expect_column_values_to_be_in_set(sku)"].data
    assert failed["failing_keys"] == [{"inventory_entry_id": "ie-2", "sku": "ORP-000009-01"}]


def test_build_suite_checks_maps_tables_to_blocking_checks():
    checks = build_suite_checks(COMMERCE_SUITES, {"core.prices": dg.AssetKey(["hub", "prices"])})
    specs = {spec.key: spec for check in checks for spec in check.check_specs}
    assert dg.AssetCheckKey(dg.AssetKey(["hub", "prices"]), "prices_suite") in specs
    assert dg.AssetCheckKey(dg.AssetKey(["core", "products"]), "products_suite") in specs
    assert len(specs) == len(COMMERCE_SUITES)
    assert all(spec.blocking for spec in specs.values())
    assert all("hub" in check.required_resource_keys for check in checks)


def test_on_postgres_the_check_validates_in_the_database_with_the_same_outcome(tmp_path):
    import psycopg

    from tests.conftest import postgres_hub

    bad_row = (
        "INSERT INTO core.prices VALUES ('pr-bad', 'p3', 1, 'QRS-000003-01', 'EUR', -500, 2, 'DE', NULL, NULL, NULL, 3)"
    )
    with postgres_hub() as postgres:
        with psycopg.connect(**postgres.backend.conninfo, autocommit=True) as con:
            for sql in (PRICES_DDL, bad_row):
                con.execute(sql)
        outcomes = {}
        for name, hub in (("postgres", postgres), ("duckdb", make_hub(tmp_path, PRICES_DDL, bad_row))):
            [evaluation] = run_prices_check(hub).get_asset_check_evaluations()
            meta = {k: v.value for k, v in evaluation.metadata.items()}
            outcomes[name] = (evaluation.passed, meta.pop("validated_in"), meta["rows_checked"], meta[NEGATIVE_CENTS])

    assert outcomes["postgres"][1] == "database" and outcomes["duckdb"][1] == "pandas"
    assert outcomes["postgres"][0] is outcomes["duckdb"][0] is False
    assert outcomes["postgres"][2:] == outcomes["duckdb"][2:]
    assert outcomes["postgres"][3]["failing_keys"] == [{"price_id": "pr-bad", "sku": "QRS-000003-01"}]
