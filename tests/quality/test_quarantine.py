"""Row-level quarantine on the catalog: the batch threshold, the release job and the count reconciliation."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from assets.commerce import PRICES, core_catalog, raw_commerce_product_projections
from pipelines.jobs import quarantine_release_job
from quality.reconciliation import reconciliation_result
from resources.hub import HubResource
from tests.conftest import Simulator

RELEASE_CONFIG = {"ops": {"release_quarantined_rows": {"config": {"dataset": "core.prices"}}}}


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every test here runs on DuckDB and on Postgres."""
    return each_hub


def use_rules(monkeypatch: pytest.MonkeyPatch, path: Path, **quality) -> None:
    """Point RULES_FILE at a rules file whose `quality` section is `quality`."""
    path.write_text(yaml.safe_dump({"quality": quality}), encoding="utf-8")
    monkeypatch.setenv("RULES_FILE", str(path))


def load_catalog(hub: HubResource, commerce, assets=(raw_commerce_product_projections, core_catalog)):
    return dg.materialize(list(assets), resources={"hub": hub, "commerce": commerce}, raise_on_error=False)


def release(hub: HubResource) -> dict:
    """Run the release job for core.prices; its counts."""
    result = quarantine_release_job.execute_in_process(run_config=RELEASE_CONFIG, resources={"hub": hub})
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def waiting(hub: HubResource) -> pd.DataFrame:
    return hub.read_frame(
        "SELECT record_key, expectation, released_at FROM quality.quarantine WHERE dataset = 'core.prices' "
        "ORDER BY expectation"
    )


def test_a_batch_above_the_threshold_is_refused_whole(
    simulator: Simulator, hub: HubResource, commerce, monkeypatch, tmp_path
):
    simulator.admin("POST", "inject", kinds=["negative_price", "unknown_currency"])
    prices = simulator.stats()["commerce"]["prices"]
    use_rules(monkeypatch, tmp_path / "strict.yaml", max_bad_row_fraction={"default": 0.01, "core.prices": 0.0001})
    result = load_catalog(hub, commerce)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "core_catalog"
    message = str(failure.step_failure_data.user_failure_data.description)
    assert f"core.prices: 2 of {prices:,} rows" in message
    assert "quality.max_bad_row_fraction.core.prices = 0.0001" in message and "nothing of it merged" in message
    metadata = {k: v.value for k, v in failure.step_failure_data.user_failure_data.metadata.items()}
    assert (metadata["bad_rows"], metadata["total_rows"]) == (2, prices)
    assert len(metadata["failing_keys"]["expect_column_values_to_be_in_set(currency)"]) == 1
    # The blocking check records the refusal on core.prices, with the numbers the UI plots.
    [check] = result.get_asset_check_evaluations()
    assert (check.asset_key.to_user_string(), check.check_name, check.passed) == (
        "core/prices",
        "bad_rows_within_threshold",
        False,
    )
    assert check.description == message
    assert check.metadata["bad_row_fraction"].value == pytest.approx(2 / prices)
    assert check.metadata["threshold"].value == 0.0001
    # Nothing of the batch merged: no core rows, no quarantine rows, no counts, the conform cursor unmoved.
    for table in ("core.products", "core.product_variants", "core.prices", "quality.quarantine", "ops.batch_counts"):
        assert not hub.backend.table_exists(table) or hub.scalar(f"SELECT count(*) FROM {table}") == 0
    assert hub.sync_state("conform:raw.commerce_product_projections") is None

    # With the default threshold the same raw batch loads, its two bad rows in quarantine.
    use_rules(monkeypatch, tmp_path / "default.yaml", max_bad_row_fraction={"default": 0.01})
    assert load_catalog(hub, commerce, [core_catalog]).success
    assert hub.scalar("SELECT count(*) FROM core.prices") == prices - 2
    assert len(waiting(hub)) == 2


def test_the_release_job_loads_rows_that_pass_after_a_rule_change(
    simulator: Simulator, hub: HubResource, commerce, monkeypatch, tmp_path
):
    planted = simulator.admin("POST", "inject", kinds=["negative_price", "unknown_currency"])
    use_rules(monkeypatch, tmp_path / "rules.yaml")
    assert load_catalog(hub, commerce).success
    assert hub.scalar("SELECT count(*) FROM core.prices WHERE currency = 'ZZZ'") == 0

    # Nothing passes yet: a release changes nothing.
    assert release(hub) == {"candidates": 2, "released": 0, "loaded": 0}
    assert waiting(hub)["released_at"].isna().all()

    use_rules(monkeypatch, tmp_path / "fixed.yaml", extra_currencies=["ZZZ"])
    assert release(hub) == {"candidates": 2, "released": 1, "loaded": 1}
    currency = planted["unknown_currency"]
    row = hub.read_frame("SELECT price_id, currency, product_id FROM core.prices WHERE currency = 'ZZZ'")
    assert row.to_dict("records") == [
        {"price_id": currency["price_id"], "currency": "ZZZ", "product_id": currency["product_id"]}
    ]
    rows = waiting(hub).set_index("expectation")
    assert pd.notna(rows.loc["expect_column_values_to_be_in_set(currency)", "released_at"])
    assert pd.isna(rows.loc["expect_column_values_to_be_between(cent_amount, min_value=0)", "released_at"])
    # The negative price still fails today's rules and keeps waiting; running again releases nothing more.
    assert release(hub) == {"candidates": 1, "released": 0, "loaded": 0}
    assert hub.scalar("SELECT count(*) FROM core.prices WHERE currency = 'ZZZ'") == 1


def test_an_unknown_dataset_is_refused_naming_the_setting(hub: HubResource):
    config = {"ops": {"release_quarantined_rows": {"config": {"dataset": "core.nope"}}}}
    result = quarantine_release_job.execute_in_process(run_config=config, resources={"hub": hub}, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "'dataset' is 'core.nope'" in str(failure.step_failure_data.user_failure_data.description)


def test_counts_reconcile_and_a_lost_row_breaks_the_equality(simulator: Simulator, hub: HubResource, commerce):
    simulator.admin("POST", "inject", kinds=["negative_price"])
    result = load_catalog(hub, commerce)
    assert result.success
    evaluations = {
        e.asset_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "counts_reconcile"
    }
    assert {"core/products", "core/product_variants", "core/prices"} <= set(evaluations)
    assert all(e.passed for e in evaluations.values())
    prices = {k: v.value for k, v in evaluations["core/prices"].metadata.items()}
    assert prices["quarantined_rows"] == 1
    assert prices["source_rows"] == prices["loaded_rows"] + 1 + prices["deduplicated_rows"]

    assert reconciliation_result(hub, PRICES).passed
    batch = prices["batch_id"]
    victim = hub.scalar("SELECT min(price_id) FROM core.prices WHERE _batch_id = ?", [batch])
    with hub.backend.connect() as con:  # a row of the batch vanishes behind the loader's back
        con.execute(f"DELETE FROM core.prices WHERE price_id = '{victim}'")
    broken = reconciliation_result(hub, PRICES)
    assert not broken.passed
    assert f"{prices['source_rows']:,} source rows but {prices['source_rows'] - 1:,} accounted for" in (
        broken.description or ""
    )
