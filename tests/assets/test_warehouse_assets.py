"""Materialize the warehouse group into a temp DuckDB hub from the simulator and from supplier CSV drops."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.commerce import commerce_assets
from assets.warehouse import (
    OFFER_COLUMNS,
    WAREHOUSE_CORE_TABLES,
    core_stock_movements,
    core_supplier_offers,
    load_supplier_file,
    raw_warehouse_purchase_orders,
    raw_warehouse_stock_levels,
    raw_warehouse_stock_movements,
    raw_warehouse_suppliers,
    raw_warehouse_warehouses,
    warehouse_assets,
)
from quality.checks import build_suite_checks
from quality.warehouse import WAREHOUSE_SUITES
from resources.hub import HUB_POOL, HubResource
from resources.warehouse import WarehouseResource
from simulators.feeds import FeedFile, write_supplier_feed
from simulators.world import World
from tests.conftest import DEFAULT_PRODUCTS, DEFAULT_SEED, Simulator

API_KEY = "wh_test_hub"
CHECKS = build_suite_checks(WAREHOUSE_SUITES, pool=HUB_POOL)
RAW_API_ASSETS = (
    raw_warehouse_warehouses,
    raw_warehouse_stock_levels,
    raw_warehouse_stock_movements,
    raw_warehouse_suppliers,
    raw_warehouse_purchase_orders,
)
MOVEMENT_ASSETS = (raw_warehouse_stock_movements, core_stock_movements)
DAY = "2026-11-26"
CORE_AND_QUARANTINE = (*(t.name for t in WAREHOUSE_CORE_TABLES), "quality.quarantine")
OFFERS_AND_QUARANTINE = ("core.supplier_offers", "quality.quarantine")
REASONS = {
    "bad_number": r"^unit_cost '\d+,\d\d' is not a decimal number$",
    "negative_quantity": r"^available_to_promise -\d+ is negative$",
    "unknown_currency": r"^unknown currency '(GPB|EUROS|US\$)'$",
    "missing_sku": r"^missing sku$",
    "wrong_column_count": r"^wrong column count: expected 7, found 6$",
}


def warehouse_resource(simulator: Simulator, landing: Path, **overrides) -> WarehouseResource:
    settings = dict(
        api_url=f"{simulator.url}/warehouse",
        api_key=API_KEY,
        landing_dir=str(landing),
        backoff_initial_s=0.01,
        backoff_max_s=0.2,
    )
    return WarehouseResource(**{**settings, **overrides})


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def warehouse(simulator: Simulator, landing: Path) -> WarehouseResource:
    return warehouse_resource(simulator, landing)


def drop(landing: Path, day: str = DAY, bad_rows: int = 5) -> FeedFile:
    return write_supplier_feed(landing, day, World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS), bad_rows)


def run(hub: HubResource, warehouse: WarehouseResource, *, commerce=None, only=None, mode="full", raise_on_error=True):
    """The warehouse group (or `only` some of its assets); with `commerce`, the catalog and the checks too."""
    selected = list(only or warehouse_assets)
    resources = {"hub": hub, "warehouse": warehouse}
    if commerce is not None:
        selected += [*commerce_assets, *CHECKS]
        resources["commerce"] = commerce
    config = {"ops": {a.op.name: {"config": {"mode": mode}} for a in RAW_API_ASSETS if a in selected}}
    return dg.materialize(selected, resources=resources, run_config=config, raise_on_error=raise_on_error)


def count(hub: HubResource, table: str) -> int:
    return int(hub.scalar(f"SELECT count(*) FROM {table}")) if hub.backend.table_exists(table) else 0


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def checksums(hub: HubResource, tables: tuple[str, ...] = CORE_AND_QUARANTINE) -> dict[str, tuple]:
    return {
        t: tuple(hub.read_frame(f"SELECT count(*), sum(hash(COLUMNS(* EXCLUDE (_loaded_at)))) FROM {t}").iloc[0])
        for t in tables
    }


def snapshot(hub: HubResource, tables: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """Every row of each table (ordered, without the load time), portable across backends."""
    return {t: hub.read_frame(f"SELECT * FROM {t} ORDER BY 1, 2").drop(columns=["_loaded_at"]) for t in tables}


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.check_name: {k.removeprefix("failed: "): v.value for k, v in e.metadata.items() if k.startswith("failed: ")}
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))[1:]


# --- the API group ------------------------------------------------------------------------


def test_every_core_table_matches_the_simulator(
    simulator: Simulator, each_hub: HubResource, commerce, warehouse, landing
):
    hub = each_hub
    feed = drop(landing)
    result = run(hub, warehouse, commerce=commerce)
    assert result.success
    stats = simulator.stats()["warehouse"]
    expected = {
        "core.warehouses": stats["warehouses"],
        "core.stock_levels": stats["stock_levels"],
        "core.stock_movements": stats["stock_movements"],
        "core.suppliers": stats["suppliers"],
        "core.purchase_orders": stats["purchase_orders"],
        "core.purchase_order_lines": stats["purchase_order_lines"],
        "core.supplier_offers": feed.rows - len(feed.bad_rows),
        "quality.quarantine": len(feed.bad_rows),
        "raw.warehouse_stock_levels": stats["stock_levels"],
        "raw.warehouse_stock_movements": stats["stock_movements"],
        "raw.warehouse_purchase_orders": stats["purchase_orders"],
    }
    assert {table: count(hub, table) for table in expected} == expected
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {s.name for s in WAREHOUSE_SUITES} | {
        "counts_reconcile",
        "bad_rows_within_threshold",
    }
    assert all(e.passed for e in evaluations)
    reported = metadata(result)
    assert reported["core/supplier_offers"]["rows_quarantined"].value == len(feed.bad_rows)
    assert reported["core/supplier_offers"]["dagster/row_count"].value == expected["core.supplier_offers"]
    channels = hub.read_frame("SELECT channel_id AS warehouse_id, country FROM core.channels ORDER BY 1")
    warehouses = hub.read_frame("SELECT warehouse_id, country FROM core.warehouses ORDER BY 1")
    assert channels.equals(warehouses)


def test_a_second_run_changes_nothing(hub: HubResource, warehouse, landing):
    drop(landing)
    run(hub, warehouse)
    before = checksums(hub)
    second = metadata(run(hub, warehouse))
    assert checksums(hub) == before
    assert {k: m["rows_changed"].value for k, m in second.items()} == {k: 0 for k in second}


def test_new_movements_land_once_with_their_cursor(simulator: Simulator, each_hub: HubResource, warehouse):
    hub = each_hub
    run(hub, warehouse)
    cursor = hub.sync_state("raw.warehouse_stock_movements").cursor
    churned = simulator.admin("POST", "churn", stock_movements=40)["warehouse"]
    reported = metadata(run(hub, warehouse, mode="incremental"))
    assert reported["raw/warehouse_stock_movements"]["rows_changed"].value == 40
    assert reported["raw/warehouse_stock_levels"]["rows_changed"].value == len(churned["stock_levels"])
    assert reported["core/stock_levels"]["rows_changed"].value == len(churned["stock_levels"])
    landed = hub.read_frame("SELECT movement_id FROM core.stock_movements ORDER BY sequence")
    assert landed["movement_id"].tolist()[-40:] == churned["stock_movements"]
    assert count(hub, "core.stock_movements") == simulator.stats()["warehouse"]["last_sequence"]
    new_cursor = hub.sync_state("raw.warehouse_stock_movements").cursor
    assert new_cursor != cursor
    assert list(warehouse.movement_feed(new_cursor)) == []
    levels = hub.read_frame("SELECT sku, warehouse_id, on_hand FROM core.stock_levels")
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in hub.read_frame("SELECT sku, warehouse_id, quantity FROM core.stock_movements").itertuples():
        totals[(row.sku, row.warehouse_id)] += row.quantity
    assert all(totals.get((r.sku, r.warehouse_id), 0) == r.on_hand for r in levels.itertuples())


def test_a_failing_feed_leaves_the_hub_and_its_cursor_unchanged(simulator: Simulator, hub: HubResource, warehouse):
    run(hub, warehouse, only=MOVEMENT_ASSETS)
    cursor = hub.sync_state("raw.warehouse_stock_movements").cursor
    landed = count(hub, "core.stock_movements")
    simulator.admin("POST", "churn", stock_movements=1500)
    simulator.admin(
        "POST", "faults", faults=[{"status": 503, "every": 2, "path_prefix": "/warehouse/v1/stock-movements"}]
    )
    failing = WarehouseResource(**{**warehouse.model_dump(), "max_attempts": 1})
    result = run(hub, failing, only=MOVEMENT_ASSETS, raise_on_error=False)
    assert not result.success
    assert hub.sync_state("raw.warehouse_stock_movements").cursor == cursor
    assert count(hub, "core.stock_movements") == count(hub, "raw.warehouse_stock_movements") == landed
    simulator.admin("DELETE", "faults")
    run(hub, warehouse, only=MOVEMENT_ASSETS)
    assert count(hub, "core.stock_movements") == landed + 1500


def test_a_refused_feed_cursor_fails_naming_the_sync_state(simulator: Simulator, hub: HubResource, warehouse):
    run(hub, warehouse, only=MOVEMENT_ASSETS)
    cursor = hub.sync_state("raw.warehouse_stock_movements").cursor
    simulator.reset(products=20)
    result = run(hub, warehouse, only=MOVEMENT_ASSETS, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert "invalid_cursor" in message and "ops.sync_state row 'raw.warehouse_stock_movements'" in message
    assert hub.sync_state("raw.warehouse_stock_movements").cursor == cursor


def test_planted_bad_records_are_quarantined_or_fail_the_named_checks(
    simulator: Simulator, hub: HubResource, commerce, warehouse
):
    kinds = [
        "negative_on_hand",
        "available_above_on_hand",
        "unknown_warehouse_sku",
        "unknown_warehouse",
        "negative_lead_time",
        "negative_unit_cost",
        "unknown_supplier_currency",
    ]
    planted = simulator.admin("POST", "inject", kinds=kinds)
    result = run(hub, warehouse, commerce=commerce, raise_on_error=False)
    # Rows that break a row rule wait in quarantine, named with their rules; the rest of their batch loads.
    frame = hub.read_frame(
        "SELECT dataset, record_key, expectation FROM quality.quarantine WHERE expectation IS NOT NULL"
    )
    held = {(r.dataset, r.expectation): json.loads(r.record_key) for r in frame.itertuples()}
    by_key = {(dataset, next(iter(key.values()))): label for (dataset, label), key in held.items()}
    negative = planted["negative_on_hand"]["stock_level_id"]
    assert "expect_column_values_to_be_between(on_hand, min_value=0)" in by_key[("core.stock_levels", negative)]
    above = planted["available_above_on_hand"]["stock_level_id"]
    assert by_key[("core.stock_levels", above)] == (
        "expect_column_pair_values_a_to_be_greater_than_b(on_hand, available, or_equal=True)"
    )
    assert by_key[("core.suppliers", planted["negative_lead_time"]["supplier_id"])] == (
        "expect_column_values_to_be_between(lead_time_days, min_value=0)"
    )
    assert by_key[("core.suppliers", planted["unknown_supplier_currency"]["supplier_id"])] == (
        "expect_column_values_to_be_in_set(currency)"
    )
    cost = planted["negative_unit_cost"]["purchase_order_id"]
    assert by_key[("core.purchase_order_lines", cost)] == (
        "expect_column_values_to_be_between(unit_cost_minor, min_value=0)"
    )
    assert len(held) == 5
    assert not count_where(hub, "core.stock_levels", "stock_level_id", [negative, above])

    # References to unknown SKUs and warehouses are rules over whole tables: they still fail the checks,
    # and so do purchase orders of the two quarantined suppliers, which core no longer knows.
    failures = failed_checks(result)
    assert set(failures) == {"stock_levels_suite", "stock_movements_suite", "purchase_orders_suite"}
    assert set(failures["purchase_orders_suite"]) == {"expect_column_values_to_be_in_set(supplier_id)"}
    suppliers = [planted["negative_lead_time"]["supplier_id"], planted["unknown_supplier_currency"]["supplier_id"]]
    orphaned = hub.read_frame(
        "SELECT purchase_order_id FROM core.purchase_orders WHERE supplier_id IN (?, ?)", suppliers
    )["purchase_order_id"]
    failing = failures["purchase_orders_suite"]["expect_column_values_to_be_in_set(supplier_id)"]["failing_keys"]
    assert {row["purchase_order_id"] for row in failing} == set(orphaned) != set()

    def keys(check: str, label: str, column: str) -> set:
        return {row[column] for row in failures[check][label]["failing_keys"]}

    levels = "stock_levels_suite"
    assert set(failures[levels]) == {
        "expect_column_values_to_be_in_set(sku)",
        "expect_column_values_to_be_in_set(warehouse_id)",
    }
    assert keys(levels, "expect_column_values_to_be_in_set(sku)", "stock_level_id") == {
        planted["unknown_warehouse_sku"]["stock_level_id"]
    }
    assert keys(levels, "expect_column_values_to_be_in_set(warehouse_id)", "warehouse_id") == {
        planted["unknown_warehouse"]["warehouse_id"]
    }
    assert set(failures["stock_movements_suite"]) == {"expect_column_values_to_be_in_set(warehouse_id)"}


def count_where(hub: HubResource, table: str, column: str, values: list) -> int:
    marks = ", ".join("?" for _ in values)
    return int(hub.scalar(f"SELECT count(*) FROM {table} WHERE {column} IN ({marks})", values))


def test_a_wrong_api_key_fails_naming_the_setting(simulator: Simulator, hub: HubResource, landing: Path):
    wrong = "wh_expired_77aa"
    result = dg.materialize(
        [raw_warehouse_warehouses],
        resources={"hub": hub, "warehouse": warehouse_resource(simulator, landing, api_key=wrong)},
        raise_on_error=False,
    )
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    error, messages = failures[0].step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    message = "\n".join(messages)
    assert "the API key was rejected (unauthorized)" in message and "WAREHOUSE_API_KEY" in message
    every_event = " ".join(str(e) for e in result.all_events)
    assert wrong not in every_event and API_KEY not in every_event
    assert count(hub, "raw.warehouse_warehouses") == 0


# --- supplier CSV files -------------------------------------------------------------------


def test_a_good_file_lands_whole(hub: HubResource, landing: Path):
    feed = drop(landing, bad_rows=0)
    result = load_supplier_file(feed.path, hub)
    assert (result.rejected, result.rows_loaded, result.rows_quarantined) == (False, feed.rows, 0)
    assert count(hub, "core.supplier_offers") == feed.rows and count(hub, "quality.quarantine") == 0
    offers = hub.read_frame("SELECT * FROM core.supplier_offers ORDER BY source_line")
    rows = csv_rows(feed.path)
    assert offers["source_line"].tolist() == list(range(2, feed.rows + 2))
    for row, offer in zip(rows, offers.itertuples(), strict=True):
        assert [offer.supplier_id, offer.supplier_sku, offer.sku, offer.currency] == [row[0], row[1], row[2], row[4]]
        assert offer.unit_cost_minor == int(Decimal(row[3]) * 100)
        assert (offer.min_order_qty, offer.available_to_promise) == (int(row[5]), int(row[6]))
    assert set(offers["feed_date"]) == {DAY} and set(offers["source_file"]) == {feed.path.name}


def test_a_file_with_bad_rows_loads_the_good_ones_and_quarantines_the_bad(each_hub: HubResource, landing: Path):
    hub = each_hub
    feed = drop(landing, bad_rows=12)
    result = load_supplier_file(feed.path, hub)
    assert (result.rejected, result.rows_loaded, result.rows_quarantined) == (False, feed.rows - 12, 12)
    quarantined = hub.read_frame("SELECT * FROM quality.quarantine ORDER BY line")
    assert quarantined["line"].tolist() == sorted(feed.bad_rows)
    for row in quarantined.itertuples():
        assert re.match(REASONS[feed.bad_rows[row.line]], row.reason), (row.line, row.reason)
        assert (row.dataset, row.source, row.batch) == ("core.supplier_offers", feed.path.name, DAY)
    rows = csv_rows(feed.path)
    first = quarantined.iloc[0]
    assert json.loads(first["record"]) == dict(zip(OFFER_COLUMNS, rows[int(first["line"]) - 2], strict=True))
    loaded = set(hub.read_frame("SELECT source_line FROM core.supplier_offers")["source_line"])
    assert loaded == set(range(2, feed.rows + 2)) - set(feed.bad_rows)
    before = snapshot(hub, OFFERS_AND_QUARANTINE)
    assert load_supplier_file(feed.path, hub).skipped
    assert all(snapshot(hub, OFFERS_AND_QUARANTINE)[t].equals(before[t]) for t in OFFERS_AND_QUARANTINE)
    again = load_supplier_file(feed.path, hub, force=True)
    assert again.load.results["quality.quarantine"].rows_changed == 0
    assert again.load.results["core.supplier_offers"].rows_changed == feed.rows - 12
    assert count(hub, "quality.quarantine") == 12


def test_a_wrong_header_rejects_the_whole_file(each_hub: HubResource, landing: Path):
    hub = each_hub
    path = landing / f"suppliers_{DAY}.csv"
    path.write_text(
        "supplier,supplier_sku,sku,cost,currency,min_order_qty,available_to_promise\nSUP-LUM,X1,LUM-000001-01,1.00,EUR,1,5\n"
    )
    result = load_supplier_file(path, hub)
    assert result.rejected and result.rows_loaded == 0
    assert result.error == (
        f"suppliers_{DAY}.csv: wrong header: expected columns {', '.join(OFFER_COLUMNS)}; "
        "found supplier, supplier_sku, sku, cost, currency, min_order_qty, available_to_promise"
    )
    assert count(hub, "core.supplier_offers") == count(hub, "quality.quarantine") == 0
    assert count(hub, "ops.batches") == 0
    path.write_text("")
    assert load_supplier_file(path, hub).error.endswith("found no header (empty file)")


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("offers.csv", "x\n", "the file name must be suppliers_<YYYY-MM-DD>.csv"),
        ("suppliers_2026-02-30.csv", "x\n", "2026-02-30 in the file name is not a date"),
        (f"suppliers_{DAY}.csv", b"\xff\xfe\x00garbage", "not a readable UTF-8 CSV file"),
    ],
)
def test_unreadable_files_are_rejected(hub: HubResource, landing: Path, name: str, content, error: str):
    path = landing / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = load_supplier_file(path, hub)
    assert result.rejected and error in result.error and count(hub, "core.supplier_offers") == 0


def test_row_rules(each_hub: HubResource, landing: Path):
    hub = each_hub
    lines = [
        "\ufeffsupplier_id,supplier_sku,sku,unit_cost,currency,min_order_qty,available_to_promise",
        "SUP-LUM,L1,LUM-000001-01,12.50,eur,6,10",
        "",
        'SUP-LUM,L2,LUM-000001-02,"1200",JPY,1,0',
        "SUP-LUM,L1,LUM-000001-03,3.00,EUR,1,1",
        "SUP-LUM,L3,LUM-000001-04,1.005,USD,1,1",
        "SUP-LUM,L4,LUM-000001-05,-2.00,USD,0,1",
        "SUP-LUM,L5,LUM-000001-06,1e3,USD,1,1.5",
        ",L6,,2.00,USD,1,1",
        "SUP-LUM,L7,LUM-000001-07,2.00,USD,1,1,extra",
        "SUP-LUM,L8,LUM-000001-08,0.125,BHD,12,7",
    ]
    path = landing / f"suppliers_{DAY}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_supplier_file(path, hub)
    assert (result.rows_loaded, result.rows_quarantined) == (3, 6)
    offers = hub.read_frame("SELECT supplier_sku, unit_cost_minor, currency FROM core.supplier_offers ORDER BY 1")
    assert offers.values.tolist() == [["L1", 1250, "EUR"], ["L2", 1200, "JPY"], ["L8", 125, "BHD"]]
    reasons = dict(hub.read_frame("SELECT line, reason FROM quality.quarantine ORDER BY line").values.tolist())
    assert reasons == {
        5: "duplicate of line 2: same supplier_id and supplier_sku",
        6: "unit_cost 1.005 has more decimals than USD allows",
        7: "unit_cost -2.00 is negative; min_order_qty 0 is below 1",
        8: "unit_cost '1e3' is not a decimal number; available_to_promise '1.5' is not a whole number",
        9: "missing supplier_id; missing sku",
        10: "wrong column count: expected 7, found 8",
    }


def test_a_later_feed_replaces_the_offers_of_the_suppliers_it_carries(hub: HubResource, landing: Path):
    load_supplier_file(drop(landing, "2026-11-26", bad_rows=0).path, hub)
    second = drop(landing, "2026-11-27", bad_rows=0)
    rows = csv_rows(second.path)
    dropped_sku = next(r for r in rows if r[0] == "SUP-LUM")[1]
    kept = [r for r in rows if r[0] != "SUP-D01" and r[1] != dropped_sku]
    with second.path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([list(OFFER_COLUMNS), *kept])
    load_supplier_file(second.path, hub)
    dates = dict(
        hub.read_frame("SELECT supplier_id, max(feed_date) FROM core.supplier_offers GROUP BY 1").values.tolist()
    )
    assert dates["SUP-D01"] == "2026-11-26" and dates["SUP-LUM"] == "2026-11-27"
    assert not hub.scalar("SELECT count(*) FROM core.supplier_offers WHERE supplier_sku = ?", [dropped_sku])
    assert count(hub, "core.supplier_offers") == len(kept) + sum(
        1 for r in csv_rows(landing / "suppliers_2026-11-26.csv") if r[0] == "SUP-D01"
    )


def test_the_asset_loads_every_file_and_fails_naming_a_rejected_one(
    simulator: Simulator, hub: HubResource, warehouse, landing
):
    good = drop(landing, bad_rows=3)
    (landing / "suppliers_2026-11-27.csv").write_text("supplier_id;supplier_sku;sku\n")
    result = dg.materialize(
        [core_supplier_offers], resources={"hub": hub, "warehouse": warehouse}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert (
        "suppliers_2026-11-27.csv: wrong header: expected columns supplier_id, supplier_sku, sku, unit_cost" in message
    )
    assert "found supplier_id;supplier_sku;sku" in message
    assert count(hub, "core.supplier_offers") == good.rows - 3 and count(hub, "quality.quarantine") == 3
