"""Bad records planted in the simulator: row-rule failures are quarantined and the rest loads; table-level
failures (duplicates, unknown references) still fail the named checks, name the records and block downstream."""

import json

import dagster as dg
import orjson
import pandas as pd
import pytest

from resources.hub import HubResource
from tests.assets.test_commerce_assets import run
from tests.conftest import Simulator

# negative_stock plants a negative on-stock and available quantity: one quarantine row failing both rules.
INVENTORY_BOTH_NEGATIVE = (
    "expect_column_values_to_be_between(quantity_on_stock, min_value=0); "
    "expect_column_values_to_be_between(available_quantity, min_value=0)"
)


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


def quarantined(hub: HubResource) -> dict[tuple[str, str], dict]:
    """(dataset, expectation) -> the quarantine row, for rows a row rule refused."""
    frame = hub.read_frame(
        "SELECT dataset, expectation, reason, record_key, record, source, released_at, _batch_id "
        "FROM quality.quarantine WHERE expectation IS NOT NULL"
    )
    return {(r.dataset, r.expectation): r._asdict() for r in frame.itertuples(index=False)}


def test_planted_rows_are_quarantined_the_rest_loads_and_table_rules_still_fail(
    simulator: Simulator, planted: dict, hub: HubResource, commerce
):
    result = run(hub, commerce, extra=[stock_report, price_list], raise_on_error=False)
    rows = quarantined(hub)
    negative, currency = planted["negative_price"], planted["unknown_currency"]
    assert set(rows) == {
        ("core.prices", "expect_column_values_to_be_between(cent_amount, min_value=0)"),
        ("core.prices", "expect_column_values_to_be_in_set(currency)"),
        ("core.product_variants", "expect_column_values_to_not_be_null(sku)"),
        ("core.inventory_entries", INVENTORY_BOTH_NEGATIVE),
    }
    price = rows[("core.prices", "expect_column_values_to_be_between(cent_amount, min_value=0)")]
    assert orjson.loads(price["record_key"]) == {"price_id": negative["price_id"], "sku": negative["sku"]}
    record = orjson.loads(price["record"])  # the whole conformed row
    assert record["price_id"] == negative["price_id"] and record["cent_amount"] < 0
    assert record["product_id"] == negative["product_id"] and "currency" in record and "valid_from" in record
    assert price["reason"].startswith(f"cent_amount={record['cent_amount']} fails expect_column_values_to_be_between")
    assert price["source"] == "raw.commerce_product_projections" and pd.isna(price["released_at"])
    ccy = rows[("core.prices", "expect_column_values_to_be_in_set(currency)")]
    assert orjson.loads(ccy["record"])["price_id"] == currency["price_id"]
    assert ccy["reason"] == 'currency="ZZZ" fails expect_column_values_to_be_in_set(currency)'
    missing = rows[("core.product_variants", "expect_column_values_to_not_be_null(sku)")]
    assert orjson.loads(missing["record_key"]) == {
        "product_id": planted["missing_sku"]["product_id"],
        "variant_id": planted["missing_sku"]["variant_id"],
        "sku": None,
    }

    # The valid rows loaded: every source row but the quarantined ones.
    source = simulator.stats()["commerce"]
    assert hub.scalar("SELECT count(*) FROM core.prices") == source["prices"] - 2
    assert hub.scalar("SELECT count(*) FROM core.product_variants") == source["variants"] - 1
    assert hub.scalar("SELECT count(*) FROM core.inventory_entries") == source["inventory_entries"] - 1
    bad_prices = [negative["price_id"], currency["price_id"]]
    assert hub.scalar("SELECT count(*) FROM core.prices WHERE price_id IN (?, ?)", bad_prices) == 0
    variant = planted["missing_sku"]
    assert (
        hub.scalar(
            "SELECT count(*) FROM core.product_variants WHERE product_id = ? AND variant_id = ?",
            [variant["product_id"], variant["variant_id"]],
        )
        == 0
    )
    assert hub.scalar("SELECT count(*) FROM core.prices WHERE product_id = ?", [negative["product_id"]]) > 0

    # The prices check passes now (its row rules hold for everything that loaded) and the counts reconcile.
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert evaluations[("core/prices", "prices_suite")].passed
    reconcile = evaluations[("core/prices", "counts_reconcile")]
    assert reconcile.passed
    counts = {k: v.value for k, v in reconcile.metadata.items()}
    assert counts["quarantined_rows"] == 2
    assert counts["source_rows"] == counts["loaded_rows"] + 2 + counts["deduplicated_rows"]
    threshold = {k: v.value for k, v in evaluations[("core/prices", "bad_rows_within_threshold")].metadata.items()}
    assert (threshold["bad_rows"], threshold["total_rows"]) == (2, counts["source_rows"])
    assert threshold["bad_row_fraction"] == pytest.approx(2 / counts["source_rows"])
    prices_meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "core/prices"
    )
    assert prices_meta["quarantined_rows"].value == 2

    # Table-level rules (a duplicate SKU) still fail their check, name the rows and block downstream.
    assert not result.success
    failures = failed_checks(result)
    assert set(failures) == {"product_variants_suite"}
    duplicates = named(failures, "product_variants_suite", "expect_column_values_to_be_unique(sku)")
    assert {row["sku"] for row in duplicates} == {planted["duplicate_sku"]["sku"]}
    assert {row["product_id"] for row in duplicates} == {
        planted["duplicate_sku"]["product_id"],
        planted["duplicate_sku"]["existing_product_id"],
    }
    variants = evaluations[("core/product_variants", "product_variants_suite")]
    assert 0 < variants.metadata["pass_rate"].value < 1
    assert variants.metadata["unexpected_rows"].value == 2
    assert "expect_column_values_to_be_unique(sku)" in variants.description
    assert variants.metadata["quality_report"].value.endswith("index.html")
    assert variants.metadata["data_docs"].value.endswith(".html")
    json.dumps({k: v.value for k, v in variants.metadata.items()})
    # The inventory check compares SKUs with core.product_variants, so a failed variants check blocks it,
    # and what reads inventory waits for it.
    assert ("core/inventory_entries", "inventory_entries_suite") not in evaluations
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "core/inventory_entries" in materialized and "stock_report" not in materialized


def test_planted_inventory_rows_quarantine_and_orphans_fail_the_check(simulator: Simulator, hub: HubResource, commerce):
    planted = simulator.admin("POST", "inject", kinds=["negative_stock", "orphan_inventory"])
    result = run(hub, commerce, raise_on_error=False)
    failures = failed_checks(result)
    assert set(failures) == {"inventory_entries_suite"}
    orphans = named(failures, "inventory_entries_suite", "expect_column_values_to_be_in_set(sku)")
    orphan = planted["orphan_inventory"]
    assert orphans == [{"inventory_entry_id": orphan["inventory_entry_id"], "sku": "ZZZ-999999-99"}]
    [row] = quarantined(hub).values()
    assert orjson.loads(row["record_key"]) == planted["negative_stock"]
    assert orjson.loads(row["record"])["quantity_on_stock"] < 0
    assert row["expectation"] == INVENTORY_BOTH_NEGATIVE


def test_clean_data_passes_every_check_and_downstream_runs(hub: HubResource, commerce, simulator: Simulator):
    result = run(hub, commerce, extra=[stock_report, price_list])
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"stock_report", "price_list"} <= materialized
    suites = [e for e in result.get_asset_check_evaluations() if e.check_name.endswith("_suite")]
    assert suites and all(e.metadata["pass_rate"].value == 1.0 for e in suites)
    assert not hub.backend.table_exists("quality.quarantine") or not hub.scalar(
        "SELECT count(*) FROM quality.quarantine"
    )
