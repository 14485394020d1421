"""Sourcing: which warehouse wins for a region, the preferred supplier, dense ranks, and a simulator-fed run."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.commerce import INVENTORY_ENTRIES, commerce_assets
from assets.inventory import INVENTORY_POSITIONS, inventory_assets
from assets.sourcing import RankBy, dense_ranks, haversine_km, sourcing_assets
from assets.warehouse import (
    PURCHASE_ORDER_LINES,
    PURCHASE_ORDERS,
    SUPPLIER_OFFERS,
    SUPPLIERS,
    WAREHOUSES,
    warehouse_assets,
)
from quality.checks import build_suite_checks
from quality.inventory import INVENTORY_SUITES
from quality.sourcing import SOURCING_CHECKS, SOURCING_SUITES
from resources.hub import HUB_POOL, HubResource
from resources.rules import RulesResource
from simulators.feeds import write_supplier_feed
from simulators.world import World
from tests.assets.test_inventory_assets import entry, load_rows
from tests.conftest import DEFAULT_PRODUCTS, DEFAULT_SEED, Simulator, every_resource


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every serving test here runs on DuckDB and on Postgres."""
    return each_hub


AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
ROOT_RULES = Path(__file__).parents[2] / "dagster_project" / "rules.yaml"
RULES = """
sourcing:
  horizon_days: 10
  inbound_statuses: [open, partially_received]
  regions:
    - {name: east, latitude: 40.7, longitude: -74.0}
    - {name: west, latitude: 37.8, longitude: -122.4}
  ranking:
    - {criterion: is_on_stock, direction: desc}
    - {criterion: distance_km, direction: asc}
    - {criterion: lead_time_days, direction: asc}
    - {criterion: available_to_promise, direction: desc}
  replenishment:
    order_quantity: 24
    max_lead_time_days: 20
    reporting_currency: USD
    exchange_rates: {USD: 1.0, EUR: 1.1}
"""
SOURCING_RUN = {"ops": {"serving__v1_sourcing_options": {"config": {"as_of": AS_OF.isoformat()}}}}


def warehouse(wid, lat, lon):
    return {"warehouse_id": wid, "version": 1, "warehouse_code": wid, "latitude": lat, "longitude": lon}


def position(sku, wid, available):
    return {"sku": sku, "location_id": wid, "on_hand": available, "available_quantity": available}


def small_world(hub: HubResource) -> None:
    """NYC and Reno warehouses, and an empty Newark one with a purchase order due in 3 days."""
    load_rows(
        hub,
        WAREHOUSES,
        [
            warehouse("wh-nyc", 40.75, -73.99),
            warehouse("wh-reno", 39.53, -119.81),
            warehouse("wh-newark", 40.73, -74.17),
        ],
    )
    load_rows(
        hub,
        INVENTORY_POSITIONS,
        [position("SKU-1", "wh-nyc", 5), position("SKU-1", "wh-reno", 50), position("SKU-2", "wh-reno", 0)],
    )
    load_rows(
        hub,
        PURCHASE_ORDERS,
        [
            {"purchase_order_id": "po-1", "version": 1, "warehouse_id": "wh-newark", "status": "open",
             "expected_at": AS_OF + timedelta(days=2, hours=5)},
            {"purchase_order_id": "po-2", "version": 1, "warehouse_id": "wh-reno", "status": "open",
             "expected_at": AS_OF + timedelta(days=30)},
            {"purchase_order_id": "po-3", "version": 1, "warehouse_id": "wh-nyc", "status": "received",
             "expected_at": AS_OF + timedelta(days=1)},
        ],
    )  # fmt: skip
    load_rows(
        hub,
        PURCHASE_ORDER_LINES,
        [
            {"purchase_order_id": "po-1", "line_id": 1, "sku": "SKU-1", "quantity_ordered": 40, "quantity_received": 0},
            {
                "purchase_order_id": "po-1",
                "line_id": 2,
                "sku": "SKU-2",
                "quantity_ordered": 30,
                "quantity_received": 10,
            },
            {"purchase_order_id": "po-2", "line_id": 1, "sku": "SKU-2", "quantity_ordered": 99, "quantity_received": 0},
            {"purchase_order_id": "po-3", "line_id": 1, "sku": "SKU-2", "quantity_ordered": 70, "quantity_received": 0},
        ],
    )
    load_rows(
        hub,
        SUPPLIERS,
        [
            {"supplier_id": "SUP-FAST", "version": 1, "lead_time_days": 5, "currency": "USD"},
            {"supplier_id": "SUP-EUR", "version": 1, "lead_time_days": 9, "currency": "EUR"},
            {"supplier_id": "SUP-SLOW", "version": 1, "lead_time_days": 40, "currency": "USD"},
            {"supplier_id": "SUP-BULK", "version": 1, "lead_time_days": 3, "currency": "USD"},
        ],
    )

    def offer(supplier, sku, cost, currency, moq=1, atp=1000):
        return {"supplier_id": supplier, "supplier_sku": f"{supplier}-{sku}", "sku": sku, "unit_cost_minor": cost,
                "currency": currency, "min_order_qty": moq, "available_to_promise": atp}  # fmt: skip

    load_rows(
        hub,
        SUPPLIER_OFFERS,
        [
            offer("SUP-FAST", "SKU-1", 1000, "USD"),
            offer("SUP-EUR", "SKU-1", 950, "EUR"),  # 10.45 USD: dearer than 10.00
            offer("SUP-SLOW", "SKU-1", 500, "USD"),  # too slow
            offer("SUP-BULK", "SKU-1", 600, "USD", moq=48),  # minimum above the order quantity
            offer("SUP-EUR", "SKU-2", 800, "EUR"),  # 8.80 USD
            offer("SUP-FAST", "SKU-2", 900, "USD"),
            offer("SUP-BULK", "SKU-2", 100, "USD", atp=10),  # cannot supply the order quantity
        ],
    )


def materialize(hub: HubResource, rules: Path, checks=()) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*sourcing_assets, *checks],
        resources={"hub": hub, "rules": RulesResource(path=str(rules))},
        run_config=SOURCING_RUN,
    )


def test_the_nearest_stocked_warehouse_wins_and_inbound_stock_counts_before_the_horizon(
    hub: HubResource, tmp_path: Path
):
    small_world(hub)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    checks = [*build_suite_checks(SOURCING_SUITES, pool=HUB_POOL), *SOURCING_CHECKS]
    result = materialize(hub, rules, checks)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "sourcing_options_suite": True,
        "sourcing_ranks_dense": True,
    }
    options = hub.read_frame("SELECT * FROM serving.v1_sourcing_options")
    ranked = {
        key: list(group.sort_values(["rank", "warehouse_id"])["warehouse_id"])
        for key, group in options.groupby(["sku", "region"])
    }
    # east: both stocked warehouses rank before the empty Newark one, nearest first; west: Reno first
    assert ranked[("SKU-1", "east")] == ["wh-nyc", "wh-reno", "wh-newark"]
    assert ranked[("SKU-1", "west")] == ["wh-reno", "wh-nyc", "wh-newark"]
    by_key = options.set_index(["sku", "region", "warehouse_id"])
    newark = by_key.loc[("SKU-1", "east", "wh-newark")]
    assert (newark["inbound_quantity"], newark["available_to_promise"], newark["lead_time_days"]) == (40, 40, 3)
    reno_2 = by_key.loc[("SKU-2", "east", "wh-reno")]
    # po-2 arrives after the 10-day horizon: no inbound; lead time is the preferred supplier's
    assert (reno_2["inbound_quantity"], reno_2["lead_time_days"]) == (0, 9)
    assert by_key.loc[("SKU-2", "east", "wh-newark"), "available_to_promise"] == 20
    assert ("SKU-2", "east", "wh-nyc") not in by_key.index  # a received order is not inbound
    assert ranked[("SKU-2", "east")] == ["wh-newark", "wh-reno"]
    assert ranked[("SKU-2", "west")] == ["wh-reno", "wh-newark"]
    assert by_key.loc[("SKU-2", "west", "wh-reno"), "rank"] == 1
    suppliers = options.groupby("sku")["preferred_supplier_id"].unique().to_dict()
    assert {sku: list(v) for sku, v in suppliers.items()} == {"SKU-1": ["SUP-FAST"], "SKU-2": ["SUP-EUR"]}
    assert (
        by_key.loc[("SKU-1", "east", "wh-nyc"), "distance_km"] < by_key.loc[("SKU-1", "east", "wh-reno"), "distance_km"]
    )


def test_a_change_run_after_a_whole_build_without_warehouse_data_rebuilds_nothing(hub: HubResource):
    load_rows(hub, INVENTORY_ENTRIES, [entry("SKU-1", "wh-nyc", 5, 5, AS_OF)])  # no warehouse table at all
    resources = {"hub": hub, "rules": RulesResource(path=str(ROOT_RULES))}
    steps = ("reconcile_inventory", "serving__v1_inventory_availability", "serving__v1_sourcing_options")

    def run(mode: str) -> dict:
        config = {step: {"config": {"mode": mode}} for step in steps}
        config["serving__v1_sourcing_options"]["config"]["as_of"] = AS_OF.isoformat()
        result = dg.materialize([*inventory_assets, *sourcing_assets], resources=resources, run_config={"ops": config})
        [event] = [
            e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "v1_sourcing_options"
        ]
        return {k: v.value for k, v in event.materialization.metadata.items()}

    assert run("rebuild")["rebuilt"] == "whole"
    after = run("changes")  # the warehouse tables the build created empty are no change
    assert (after["rebuilt"], after["keys_recomputed"]) == ("changed keys", 0)


def test_haversine_known_distance():
    # Paris to London is about 344 km
    assert abs(float(haversine_km(48.8566, 2.3522, 51.5072, -0.1276)) - 343.5) < 2


groups = st.lists(
    st.tuples(st.sampled_from("ab"), st.sampled_from("xy"), st.one_of(st.none(), st.integers(0, 3)),
              st.one_of(st.none(), st.floats(0, 5))),
    min_size=1,
    max_size=30,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(groups, st.sampled_from(["asc", "desc"]))
def test_ranks_are_dense_per_sku_and_region(rows, direction):
    frame = pd.DataFrame(rows, columns=["sku", "region", "available_quantity", "distance_km"])
    ranking = [
        RankBy(criterion="available_quantity", direction=direction),
        RankBy(criterion="distance_km", direction="asc"),
    ]
    frame["rank"] = dense_ranks(frame, ["sku", "region"], ranking)
    for _, group in frame.groupby(["sku", "region"]):
        assert sorted(group["rank"].unique()) == list(range(1, group["rank"].nunique() + 1))
        # equal candidates share a rank, different ones do not
        keys = group[["available_quantity", "distance_km"]].astype(float).fillna(-1)
        assert keys.drop_duplicates().shape[0] == group["rank"].nunique()


def test_the_serving_layer_over_a_simulator_fed_core(simulator: Simulator, hub: HubResource, tmp_path: Path):
    landing = tmp_path / "landing"
    write_supplier_feed(landing, "2026-11-26", World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS), bad_rows=0)
    simulator.admin("POST", "churn", products=0, inventory=25, orders=0)
    resources = {**every_resource(simulator, hub, landing), "rules": RulesResource(path=str(ROOT_RULES))}
    upstream = dg.materialize([*commerce_assets, *warehouse_assets], resources=resources)
    assert upstream.success
    checks = [
        *build_suite_checks((*INVENTORY_SUITES, *SOURCING_SUITES), pool=HUB_POOL),
        *SOURCING_CHECKS,
    ]
    result = dg.materialize([*inventory_assets, *sourcing_assets, *checks], resources=resources)
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    counts = {
        t: hub.scalar(f"SELECT count(*) FROM {t}")
        for t in ("core.inventory_positions", "serving.v1_inventory_availability", "serving.v1_sourcing_options")
    }
    assert all(n > 0 for n in counts.values()), counts
    # churn moved commerce's available quantity without the WMS: those disagreements are logged
    assert hub.scalar("SELECT count(*) FROM quality.inventory_conflicts WHERE field = 'available'") > 0
    regions = hub.read_frame("SELECT DISTINCT region FROM serving.v1_sourcing_options")["region"]
    assert set(regions) == {"us-east", "us-west", "france", "united-kingdom", "germany"}
    assert hub.scalar("SELECT count(*) FROM serving.v1_sourcing_options WHERE preferred_supplier_id IS NOT NULL") > 0
