"""Materialize the analytics group, a day at a time, into a temp DuckDB hub from the simulator over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.errors import DagsterUnknownPartitionError

from assets.analytics import (
    PRODUCT_DAILY_METRICS,
    RAW_REPORT_ROWS,
    START_DATE_SETTING,
    AnalyticsDateError,
    UnknownCurrencyError,
    analytics_assets,
    land_report,
    report_days,
    start_date_setting,
)
from assets.commerce import commerce_assets
from quality.analytics import ANALYTICS_SUITES
from quality.checks import build_suite_checks
from quality.quarantine import QUARANTINE
from resources.analytics import AnalyticsResource
from resources.hub import HUB_POOL, HubResource
from tests.conftest import Simulator, commerce_resource
from tests.reliability.test_bad_input import failure_message

KEY = "an_test_hub"
WRONG_KEY = "an_wrong_5d2a"
CHECKS = build_suite_checks(ANALYTICS_SUITES, pool=HUB_POOL)
PARTITIONS = analytics_assets[0].partitions_def
REPO_ROOT = Path(__file__).resolve().parents[2]


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def analytics_resource(simulator: Simulator, **overrides) -> AnalyticsResource:
    settings = dict(
        api_url=f"{simulator.url}/analytics/v1",
        property_id="123456789",
        api_key=KEY,
        page_size=300,
        backoff_initial_s=0.01,
        backoff_max_s=0.2,
    )
    return AnalyticsResource(**{**settings, **overrides})


@pytest.fixture(scope="module")
def catalog_hub(simulator_process: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub file holding the default world's catalog (the SKU check reads core.product_variants)."""
    simulator_process.reset()
    path = tmp_path_factory.mktemp("catalog") / "hub.duckdb"
    dg.materialize(
        commerce_assets,
        resources={"hub": HubResource(url=f"duckdb:///{path}"), "commerce": commerce_resource(simulator_process)},
    )
    return path


@pytest.fixture
def hub(catalog_hub: Path, tmp_path: Path) -> HubResource:
    path = tmp_path / "hub.duckdb"
    shutil.copy(catalog_hub, path)
    return HubResource(url=f"duckdb:///{path}")


def run(hub: HubResource, analytics: AnalyticsResource, day: str | None = None, *, tags=None, raise_on_error=True):
    return dg.materialize(
        [*analytics_assets, *CHECKS],
        resources={"hub": hub, "analytics": analytics},
        partition_key=day,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def rows_per_day(hub: HubResource, table: str = PRODUCT_DAILY_METRICS.name) -> dict[str, int]:
    day = "metric_date" if table == PRODUCT_DAILY_METRICS.name else "split_part(id, ':', 1)"
    frame = hub.read_frame(f"SELECT {day} AS day, count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1")
    return dict(zip(frame["day"], frame["n"].astype(int), strict=True))


def checksum(hub: HubResource, table: str) -> tuple:
    return tuple(hub.read_frame(f"SELECT count(*) AS n, sum(hash(COLUMNS(*))) FROM {table}").iloc[0])


def reported(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.check_name: {k.removeprefix("failed: "): v.value for k, v in e.metadata.items() if k.startswith("failed: ")}
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }


# ---------------------------------------------------------------------------------------------------
# partitions
# ---------------------------------------------------------------------------------------------------


def test_three_partitions_land_exactly_their_days(simulator: Simulator, hub: HubResource):
    analytics = analytics_resource(simulator)
    days = [days_ago(3), days_ago(2), days_ago(1)]
    expected = simulator.admin("GET", "analytics/rows", start=days[0], end=days[-1])["by_date"]
    for n, day in enumerate(days, start=1):
        result = run(hub, analytics, day)
        assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
        assert rows_per_day(hub) == {d: expected[d] for d in days[:n]}
        assert reported(result)["core/product_daily_metrics"]["report_rows"] == expected[day]
    assert rows_per_day(hub, RAW_REPORT_ROWS.name) == expected
    assert simulator.stats()["analytics"]["reports_served"] == sum(-(-expected[d] // 300) for d in days)


def test_core_rows_carry_the_reported_numbers_in_minor_units(simulator: Simulator, hub: HubResource):
    analytics = analytics_resource(simulator)
    run(hub, analytics, days_ago(1))
    source = {(r["date"], r["item_id"]): r for page in analytics.report_pages(days_ago(1), days_ago(1)) for r in page}
    core = hub.read_frame(f"SELECT * FROM {PRODUCT_DAILY_METRICS.name}")
    assert len(core) == len(source)
    for row in core.to_dict("records"):
        report = source[(row["metric_date"], row["sku"])]
        assert (row["items_viewed"], row["items_added_to_cart"], row["items_purchased"]) == (
            report["items_viewed"],
            report["items_added_to_cart"],
            report["items_purchased"],
        )
        assert row["item_revenue_minor"] == Decimal(report["item_revenue"]) * 100
        assert row["currency"] == "USD"


def test_rerunning_a_partition_changes_nothing(simulator: Simulator, hub: HubResource):
    analytics = analytics_resource(simulator)
    for day in (days_ago(2), days_ago(1)):
        run(hub, analytics, day)
    before = {t: checksum(hub, t) for t in (PRODUCT_DAILY_METRICS.name, RAW_REPORT_ROWS.name)}
    again = reported(run(hub, analytics, days_ago(2)))
    assert {t: checksum(hub, t) for t in before} == before
    assert again["raw/analytics_report_rows"]["rows_changed"] == 0
    assert again["core/product_daily_metrics"]["rows_changed"] == 0
    assert again["core/product_daily_metrics"]["days_replaced"] == 0


def test_partitions_land_and_rerun_on_each_backend(simulator: Simulator, each_hub: HubResource):
    dg.materialize(commerce_assets, resources={"hub": each_hub, "commerce": commerce_resource(simulator)})
    analytics = analytics_resource(simulator)
    days = [days_ago(2), days_ago(1)]
    for day in days:
        assert all(e.passed for e in run(each_hub, analytics, day).get_asset_check_evaluations())
    assert rows_per_day(each_hub) == simulator.admin("GET", "analytics/rows", start=days[0], end=days[-1])["by_date"]
    table = f"SELECT * FROM {PRODUCT_DAILY_METRICS.name} ORDER BY metric_date, sku"
    before = each_hub.read_frame(table)
    again = reported(run(each_hub, analytics, days[0]))
    assert again["core/product_daily_metrics"]["rows_changed"] == 0
    assert again["raw/analytics_report_rows"]["rows_changed"] == 0
    assert each_hub.read_frame(table).equals(before)


def test_a_partition_range_lands_in_one_run(simulator: Simulator, hub: HubResource):
    days = [days_ago(4), days_ago(3), days_ago(2)]
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    result = run(hub, analytics_resource(simulator), tags=tags)
    assert result.success
    assert rows_per_day(hub) == simulator.admin("GET", "analytics/rows", start=days[0], end=days[-1])["by_date"]
    partitions = {e.partition for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "core"}
    assert partitions == set(days)


def test_a_day_restated_at_the_source_is_replaced_whole(simulator: Simulator, hub: HubResource):
    analytics = analytics_resource(simulator)
    run(hub, analytics, days_ago(2))
    untouched = checksum(hub, PRODUCT_DAILY_METRICS.name)
    planted = simulator.admin("POST", "inject", kinds=["unknown_item"])["unknown_item"]
    run(hub, analytics, days_ago(1), raise_on_error=False)
    skus = set(
        hub.read_frame(f"SELECT sku FROM {PRODUCT_DAILY_METRICS.name} WHERE metric_date = ?", [days_ago(1)])["sku"]
    )
    assert planted["sku"] in skus
    simulator.reset()  # the source no longer has the planted row
    result = reported(run(hub, analytics, days_ago(1)))
    assert result["core/product_daily_metrics"]["days_replaced"] == 1
    skus = set(
        hub.read_frame(f"SELECT sku FROM {PRODUCT_DAILY_METRICS.name} WHERE metric_date = ?", [days_ago(1)])["sku"]
    )
    assert planted["sku"] not in skus
    expected = simulator.admin("GET", "analytics/rows", start=days_ago(2), end=days_ago(1))["by_date"]
    assert rows_per_day(hub) == expected
    day_two = hub.read_frame(
        f"SELECT count(*) AS n, sum(hash(COLUMNS(*))) FROM {PRODUCT_DAILY_METRICS.name} WHERE metric_date = ?",
        [days_ago(2)],
    ).iloc[0]
    assert tuple(day_two) == untouched, "the other day kept its rows and batch columns"


# ---------------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------------


def test_planted_rows_fail_the_check_naming_them(simulator: Simulator, hub: HubResource):
    planted = simulator.admin("POST", "inject", kinds=["negative_views", "funnel_inversion", "unknown_item"])
    result = run(hub, analytics_resource(simulator), days_ago(1), raise_on_error=False)
    failures = failed_checks(result)["product_daily_metrics_suite"]

    def keys(label: str) -> list[dict]:
        return failures[label]["failing_keys"]

    day = days_ago(1)
    negative = {"metric_date": day, "sku": planted["negative_views"]["sku"]}
    assert keys("expect_column_values_to_be_between(items_viewed, min_value=0)") == [negative]
    funnel = {"metric_date": day, "sku": planted["funnel_inversion"]["sku"]}
    pair_failures = [v["failing_keys"] for k, v in failures.items() if "column_pair_values_a_to_be_greater_than_b" in k]
    assert sorted(map(str, pair_failures)) == sorted(map(str, [[negative], [funnel]]))
    assert keys("expect_column_values_to_be_in_set(sku)") == [
        {"metric_date": day, "sku": planted["unknown_item"]["sku"]}
    ]


# ---------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------


def test_a_malformed_row_is_quarantined_and_the_checked_run_succeeds(simulator: Simulator, hub: HubResource):
    rule = {"kind": "malformed", "variant": "wrong_type", "next": 1, "path_prefix": "/analytics"}
    simulator.admin("POST", "faults", faults=[rule])
    result = run(hub, analytics_resource(simulator), days_ago(1))
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    expected = simulator.admin("GET", "analytics/rows", start=days_ago(1), end=days_ago(1))["rows"]
    metadata = reported(result)["core/product_daily_metrics"]
    assert (metadata["report_rows"], metadata["loaded_rows"], metadata["quarantined_rows"]) == (
        expected,
        expected - 1,
        1,
    )
    assert rows_per_day(hub) == {days_ago(1): expected - 1}
    quarantined = hub.read_frame(f"SELECT dataset, batch, reason FROM {QUARANTINE.name}").to_dict("records")
    assert quarantined == [
        {
            "dataset": PRODUCT_DAILY_METRICS.name,
            "batch": days_ago(1),
            "reason": f"cannot land in {PRODUCT_DAILY_METRICS.name}: itemsViewed 'not-a-number' is not an integer",
        }
    ]
    assert run(hub, analytics_resource(simulator), days_ago(1)).success  # the fault is gone: the day is whole
    assert rows_per_day(hub) == {days_ago(1): expected}


def report_row(day: str, sku: str, **changes) -> dict:
    row = {
        "date": day,
        "item_id": sku,
        "items_viewed": 9,
        "items_added_to_cart": 2,
        "items_purchased": 1,
        "item_revenue": "19.99",
        "currency": "USD",
    }
    return {**row, **changes}


def test_rows_that_cannot_land_go_to_quarantine_with_their_day_or_the_range(hub: HubResource):
    days = [days_ago(2), days_ago(1)]
    undated = {
        "item_id": "BAD-000003-01",
        "unreadable": "date has no value",
        "row": {"dimensionValues": [{}, {"value": "BAD-000003-01"}], "metricValues": [{"value": "1"}]},
        "currency": "USD",
    }
    pages = [
        [report_row(days[0], "BAD-000001-01"), report_row(days[0], "BAD-000002-01", item_revenue="lots")],
        [undated, report_row(days[1], "BAD-000004-01", items_purchased="1")],
    ]
    landed = land_report(hub, pages, days)
    assert landed.days_replaced == [days[0]] and len(landed.quarantined) == 3  # day two has no row to load
    core = hub.read_frame(f"SELECT metric_date, sku FROM {PRODUCT_DAILY_METRICS.name}").to_dict("records")
    assert core == [{"metric_date": days[0], "sku": "BAD-000001-01"}]
    quarantined = hub.read_frame(f"SELECT batch, reason, record FROM {QUARANTINE.name} ORDER BY reason")
    prefix = f"cannot land in {PRODUCT_DAILY_METRICS.name}: "
    assert list(zip(quarantined["batch"], quarantined["reason"], strict=True)) == [
        (f"{days[0]}..{days[1]}", prefix + "date has no value"),
        (days[1], prefix + "items_purchased '1' is not an integer"),
        (days[0], prefix + "revenue 'lots' is not a decimal amount"),
    ]
    assert json.loads(quarantined["record"][0]) == undated["row"]


def test_an_unknown_currency_fails_the_load_and_leaves_the_hub_as_it_was(hub: HubResource):
    with pytest.raises(UnknownCurrencyError, match="revenue currency 'XYZ' has no known minor unit"):
        land_report(hub, [[report_row(days_ago(1), "BAD-000001-01", currency="XYZ")]], [days_ago(1)])
    assert hub.row_count(PRODUCT_DAILY_METRICS) == 0


@pytest.mark.parametrize("day", ["2020-01-01", "today", "in-five-days"])
def test_a_day_outside_the_partitions_is_refused(simulator: Simulator, hub: HubResource, day: str):
    day = {"today": days_ago(0), "in-five-days": days_ago(-5)}.get(day, day)
    with pytest.raises(DagsterUnknownPartitionError, match=day):
        run(hub, analytics_resource(simulator), day)
    first, last = PARTITIONS.get_first_partition_key(), PARTITIONS.get_last_partition_key()
    assert last == days_ago(1)
    with pytest.raises(AnalyticsDateError) as refused:
        report_days(PARTITIONS, day, last) if day < first else report_days(PARTITIONS, first, day)
    assert str(refused.value) == (
        f"analytics date {day} is outside the partition range: the valid range is {first} to {last} "
        f"({START_DATE_SETTING} sets the first day; the last is yesterday, UTC)"
    )
    assert simulator.stats()["analytics"]["reports_served"] == 0


def test_report_days_lists_the_partitions_of_a_valid_range():
    assert report_days(PARTITIONS, days_ago(3), days_ago(1)) == [days_ago(3), days_ago(2), days_ago(1)]
    with pytest.raises(AnalyticsDateError, match="after the end date"):
        report_days(PARTITIONS, days_ago(1), days_ago(3))
    with pytest.raises(AnalyticsDateError, match="'last week' is not a YYYY-MM-DD date"):
        report_days(PARTITIONS, "last week", days_ago(1))


def test_the_start_date_setting_is_checked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(START_DATE_SETTING, "2026-02-03")
    assert start_date_setting() == "2026-02-03"
    monkeypatch.setenv(START_DATE_SETTING, "03/02/2026")
    with pytest.raises(ValueError, match=f"{START_DATE_SETTING} must be a date written YYYY-MM-DD, got '03/02/2026'"):
        start_date_setting()


def test_a_wrong_key_fails_the_run_naming_the_setting(simulator: Simulator, hub: HubResource):
    result = run(hub, analytics_resource(simulator, api_key=WRONG_KEY), days_ago(1), raise_on_error=False)
    message = failure_message(result)
    assert "the API key was refused" in message and "ANALYTICS_API_KEY" in message
    every_event = " ".join(str(e) for e in result.all_events)
    assert WRONG_KEY not in every_event and KEY not in every_event
    assert hub.row_count(PRODUCT_DAILY_METRICS) == 0


# ---------------------------------------------------------------------------------------------------
# the dagster CLI
# ---------------------------------------------------------------------------------------------------

CLI_DEFINITIONS = textwrap.dedent(
    """
    import dagster as dg

    from assets.analytics import analytics_assets
    from resources.analytics import AnalyticsResource
    from resources.hub import HubResource

    defs = dg.Definitions(
        assets=analytics_assets,
        resources={
            "hub": HubResource(url=dg.EnvVar("HUB_URL")),
            "analytics": AnalyticsResource(
                api_url=dg.EnvVar("ANALYTICS_API_URL"),
                property_id=dg.EnvVar("ANALYTICS_PROPERTY_ID"),
                api_key=dg.EnvVar("ANALYTICS_API_KEY"),
            ),
        },
    )
    """
)


@pytest.fixture
def cli(simulator: Simulator, hub: HubResource, tmp_path: Path) -> Iterator:
    definitions = tmp_path / "analytics_definitions.py"
    definitions.write_text(CLI_DEFINITIONS)
    (tmp_path / "dagster_home").mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "HUB_URL": hub.url,
        "ANALYTICS_API_URL": f"{simulator.url}/analytics/v1",
        "ANALYTICS_PROPERTY_ID": "123456789",
        "ANALYTICS_API_KEY": KEY,
    }
    dagster = Path(sys.executable).parent / "dagster"

    def materialize(*args: str) -> subprocess.CompletedProcess:
        command = [str(dagster), "asset", "materialize", "-f", str(definitions), "--select", "group:analytics", *args]
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)

    yield materialize


@pytest.mark.slow
def test_a_backfill_of_a_date_range_from_the_cli(cli, simulator: Simulator, hub: HubResource):
    done = cli("--partition-range", f"{days_ago(3)}...{days_ago(1)}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert rows_per_day(hub) == simulator.admin("GET", "analytics/rows", start=days_ago(3), end=days_ago(1))["by_date"]
    refused = cli("--partition", "2020-01-01")
    assert refused.returncode != 0
    assert "2020-01-01" in refused.stderr
