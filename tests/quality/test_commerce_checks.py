"""Bad records planted in the simulator fail the named checks, name the records, and block downstream."""

import json

import dagster as dg
import pytest

from resources.hub import HubResource
from tests.assets.test_commerce_assets import run
from tests.conftest import Simulator


@dg.asset(deps=[dg.AssetKey(["core", "inventory_entries"])], group_name="test")
def stock_report() -> None:
    """Stands in for a serving model that reads core inventory."""


@dg.asset(deps=[dg.AssetKey(["core", "prices"])], group_name="test")
def price_list() -> None:
    """Stands in for a serving model that reads core prices."""


@pytest.fixture
def planted(simulator: Simulator) -> dict:
    return simulator.admin("POST", "inject")


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """check name -> {failed expectation label: its metadata} for every failed check."""
    failures = {}
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            failures[evaluation.check_name] = {
                key.removeprefix("failed: "): value.value
                for key, value in evaluation.metadata.items()
                if key.startswith("failed: ")
            }
    return failures


def named(failures: dict, check: str, label: str) -> list[dict]:
    return failures[check][label]["failing_keys"]


def test_planted_catalog_records_fail_the_named_checks(planted: dict, hub: HubResource, commerce):
    result = run(hub, commerce, raise_on_error=False)
    assert not result.success
    failures = failed_checks(result)
    assert set(failures) == {"product_variants_suite", "prices_suite"}

    missing = planted["missing_sku"]
    assert {"product_id": missing["product_id"], "variant_id": missing["variant_id"], "sku": None} in named(
        failures, "product_variants_suite", "expect_column_values_to_not_be_null(sku)"
    )
    duplicates = named(failures, "product_variants_suite", "expect_column_values_to_be_unique(sku)")
    assert {row["sku"] for row in duplicates} == {planted["duplicate_sku"]["sku"]}
    assert {row["product_id"] for row in duplicates} == {
        planted["duplicate_sku"]["product_id"],
        planted["duplicate_sku"]["existing_product_id"],
    }

    negative = named(failures, "prices_suite", "expect_column_values_to_be_between(cent_amount, min_value=0)")
    assert negative == [{"price_id": planted["negative_price"]["price_id"], "sku": planted["negative_price"]["sku"]}]
    currency = named(failures, "prices_suite", "expect_column_values_to_be_in_set(currency)")
    assert [row["price_id"] for row in currency] == [planted["unknown_currency"]["price_id"]]

    # The inventory check compares SKUs with core.product_variants, so a failed variants check blocks it.
    evaluated = {e.check_name for e in result.get_asset_check_evaluations()}
    assert "inventory_entries_suite" not in evaluated


def test_planted_inventory_records_fail_the_inventory_check(simulator: Simulator, hub: HubResource, commerce):
    planted = simulator.admin("POST", "inject", kinds=["negative_stock", "orphan_inventory"])
    result = run(hub, commerce, raise_on_error=False)
    failures = failed_checks(result)
    assert set(failures) == {"inventory_entries_suite"}
    stock = named(
        failures, "inventory_entries_suite", "expect_column_values_to_be_between(quantity_on_stock, min_value=0)"
    )
    assert stock == [
        {"inventory_entry_id": planted["negative_stock"]["inventory_entry_id"], "sku": planted["negative_stock"]["sku"]}
    ]
    orphans = named(failures, "inventory_entries_suite", "expect_column_values_to_be_in_set(sku)")
    orphan = planted["orphan_inventory"]
    assert orphans == [{"inventory_entry_id": orphan["inventory_entry_id"], "sku": "ZZZ-999999-99"}]


def test_a_failed_check_blocks_what_reads_the_table(planted: dict, hub: HubResource, commerce):
    result = run(hub, commerce, extra=[stock_report, price_list], raise_on_error=False)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "core/inventory_entries" in materialized and "core/prices" in materialized
    assert "stock_report" not in materialized
    assert "price_list" not in materialized


def test_check_metadata_reports_rates_and_the_failure_in_the_description(planted: dict, hub: HubResource, commerce):
    result = run(hub, commerce, raise_on_error=False)
    prices = next(e for e in result.get_asset_check_evaluations() if e.check_name == "prices_suite")
    assert 0 < prices.metadata["pass_rate"].value < 1
    assert prices.metadata["unexpected_rows"].value == 2
    assert "expect_column_values_to_be_in_set(currency)" in prices.description
    json.dumps({k: v.value for k, v in prices.metadata.items()})


def test_clean_data_passes_every_check_and_downstream_runs(hub: HubResource, commerce, simulator: Simulator):
    result = run(hub, commerce, extra=[stock_report, price_list])
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"stock_report", "price_list"} <= materialized
    assert all(e.metadata["pass_rate"].value == 1.0 for e in result.get_asset_check_evaluations())
