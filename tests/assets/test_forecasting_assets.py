"""Demand forecast and replenishment: the method on known series, a hand-built hub, and the simulator."""

import math
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from assets.analytics import PRODUCT_DAILY_METRICS
from assets.forecasting import (
    DEMAND_FORECAST,
    REPLENISHMENT_SUGGESTIONS,
    ForecastingRules,
    backtest,
    daily_demand,
    forecasting_assets,
    holt_winters,
    naive_last_week,
    replenishment_rows,
)
from assets.orders import ORDER_LINES, ORDERS, orders_assets
from assets.warehouse import (
    PURCHASE_ORDER_LINES,
    PURCHASE_ORDERS,
    STOCK_LEVELS,
    SUPPLIER_OFFERS,
    SUPPLIERS,
    warehouse_assets,
)
from quality.checks import build_suite_checks
from quality.forecasting import FORECASTING_SUITES
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesError, RulesResource
from simulators.feeds import write_supplier_feed
from simulators.world import World
from tests.conftest import DEFAULT_PRODUCTS, DEFAULT_SEED, Simulator, every_resource


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every serving test here runs on DuckDB and on Postgres."""
    return each_hub


RULES_FILE = Path(__file__).parent.parent.parent / "dagster_project" / "rules.yaml"
RULES = ForecastingRules.model_validate(yaml.safe_load(RULES_FILE.read_text())["forecasting"])
CHECKS = build_suite_checks(FORECASTING_SUITES, pool=HUB_POOL)
WEEK = np.array([1.0, 0.8, 0.9, 1.0, 1.3, 2.0, 1.6])
FIRST_DAY = date(2026, 1, 1)
DAYS = 70


@pytest.fixture
def rules(tmp_path: Path) -> RulesResource:
    path = tmp_path / "rules.yaml"
    shutil.copy(RULES_FILE, path)
    return RulesResource(path=str(path))


def write(hub: HubResource, spec: TableSpec, rows: list[dict]) -> None:
    """Core rows into the hub; columns a row does not name are null."""
    with hub.load(f"test:{spec.name}") as load:
        load.stage(spec).append(spec.to_arrow({c: [r.get(c) for r in rows] for c in spec.column_names}))


def materialize(hub: HubResource, rules: RulesResource) -> dg.ExecuteInProcessResult:
    return dg.materialize([*forecasting_assets, *CHECKS], resources={"hub": hub, "rules": rules})


def forecast_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "v1_demand_forecast"]
    return {k: v.value for k, v in event.materialization.metadata.items()}


# --- the method on series with known answers ------------------------------------------------------------------


def test_a_noise_free_weekly_series_is_forecast_exactly():
    days = np.arange(84)
    history = np.vstack([10 * WEEK[days % 7], np.full(84, 3.0)])
    fit = holt_winters(history, 28, 7, RULES.smoothing)
    ahead = np.arange(84, 84 + 28)
    np.testing.assert_allclose(fit.forecast[0], 10 * WEEK[ahead % 7], atol=1e-9)
    np.testing.assert_allclose(fit.forecast[1], 3.0, atol=1e-9)
    np.testing.assert_allclose(fit.residual_std, 0.0, atol=1e-9)


def test_the_method_beats_the_naive_last_week_baseline_on_seasonal_noisy_history():
    """Poisson demand around a weekly profile: smoothing averages the noise the naive copy of last week keeps."""
    rng = np.random.default_rng(20261127)
    days = np.arange(RULES.history_days)
    history = rng.poisson(np.tile(6 * WEEK[days % 7], (40, 1))).astype(float)
    scores = backtest(history, RULES)
    assert scores["backtest_days"] == 28
    assert scores["backtest_wape_method"] < 0.9 * scores["backtest_wape_naive_last_week"]
    truth = np.tile(6 * WEEK[days[-28:] % 7], (40, 1))
    method = holt_winters(history[:, :-28], 28, 7, RULES.smoothing).forecast
    naive = naive_last_week(history[:, :-28], 28, 7)
    assert np.abs(method - truth).mean() < np.abs(naive - truth).mean()


def test_a_short_history_holds_out_less_and_too_short_a_history_skips_the_backtest():
    assert backtest(np.ones((2, 30)), RULES)["backtest_days"] == 16
    assert "backtest_skipped" in backtest(np.ones((2, 20)), RULES)


@settings(max_examples=60, deadline=None)
@given(
    history=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(14, 60)), elements=st.integers(0, 500)),
    available=st.integers(0, 1_000),
    inbound=st.integers(0, 1_000),
    moq=st.integers(1, 300),
    lead=st.integers(0, 60),
)
def test_forecasts_and_suggestions_are_never_negative(history, available, inbound, moq, lead):
    fit = holt_winters(history, RULES.horizon_days, 7, RULES.smoothing)
    assert (fit.forecast >= 0).all() and (fit.residual_std >= 0).all()
    skus = [f"SKU-{i}" for i in range(len(history))]
    demand = pd.DataFrame(history, index=skus, columns=[FIRST_DAY + timedelta(days=d) for d in range(history.shape[1])])
    suppliers = pd.DataFrame(
        {"supplier_id": "S", "lead_time_days": lead, "min_order_qty": moq}, index=pd.Index(skus, name="sku")
    )
    positions = pd.DataFrame(
        {"on_hand": available, "available": available, "inbound_units": inbound}, index=pd.Index(skus, name="sku")
    )
    rows = pd.DataFrame(replenishment_rows(demand, fit, suppliers, positions, RULES))
    assert (rows["reorder_point"] >= 0).all() and (rows["safety_stock"] >= 0).all()
    assert (rows["suggested_order_qty"] >= 0).all()
    ordered = rows[rows["suggested_order_qty"] > 0]
    assert (ordered["suggested_order_qty"] >= moq).all() and ordered["needs_reorder"].all()
    assert (rows.loc[~rows["needs_reorder"], "suggested_order_qty"] == 0).all()
    covered = ordered["suggested_order_qty"] + available + inbound
    assert (covered >= ordered["reorder_point"] - 1e-6).all()


def test_a_bad_rule_names_the_field(tmp_path: Path):
    document = yaml.safe_load(RULES_FILE.read_text())
    document["forecasting"]["safety_stock"]["service_level"] = 1.5
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(RulesError, match=r"forecasting\.safety_stock\.service_level"):
        RulesResource(path=str(path)).section("forecasting", ForecastingRules)


# --- a hand-built hub ------------------------------------------------------------------------------------------


def noon(day: int) -> datetime:
    return datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=12)


@pytest.fixture
def small_world(hub: HubResource) -> HubResource:
    """SKU A sells 5 a day on orders (and one cancelled order of 100); SKU B sells in analytics and twice in orders.

    A: two suppliers, the faster one (5 days) asks at least 200 units; 15 available, 5 inbound on an open PO.
    B: no supplier offer, no stock.
    """
    orders, lines = [], []
    for day in range(DAYS):
        orders.append({"order_id": f"o{day}", "order_state": "Confirmed", "created_at": noon(day)})
        lines.append({"order_id": f"o{day}", "line_item_id": "1", "sku": "A", "quantity": 5})
    orders += [
        {"order_id": "cancelled", "order_state": "Cancelled", "created_at": noon(30)},
        {"order_id": "b1", "order_state": "Complete", "created_at": noon(DAYS - 7)},
        {"order_id": "b2", "order_state": "Complete", "created_at": noon(DAYS - 6)},
    ]
    lines += [
        {"order_id": "cancelled", "line_item_id": "1", "sku": "A", "quantity": 100},
        {"order_id": "b1", "line_item_id": "1", "sku": "B", "quantity": 3},
        {"order_id": "b2", "line_item_id": "1", "sku": "B", "quantity": 9},
    ]
    write(hub, ORDERS, orders)
    write(hub, ORDER_LINES, lines)
    b_week = [1, 0, 0, 1, 2, 4, 3]
    write(
        hub,
        PRODUCT_DAILY_METRICS,
        [
            {"metric_date": (FIRST_DAY + timedelta(days=d)).isoformat(), "sku": "B", "items_purchased": b_week[d % 7]}
            for d in range(DAYS)
        ],
    )
    write(
        hub,
        SUPPLIERS,
        [{"supplier_id": "slow", "lead_time_days": 10}, {"supplier_id": "fast", "lead_time_days": 5}],
    )
    write(
        hub,
        SUPPLIER_OFFERS,
        [
            {"supplier_id": "slow", "supplier_sku": "s-A", "sku": "A", "unit_cost_minor": 100, "min_order_qty": 1},
            {"supplier_id": "fast", "supplier_sku": "f-A", "sku": "A", "unit_cost_minor": 150, "min_order_qty": 200},
        ],
    )
    write(
        hub,
        STOCK_LEVELS,
        [
            {"stock_level_id": "1", "sku": "A", "warehouse_id": "w1", "on_hand": 12, "available": 10},
            {"stock_level_id": "2", "sku": "A", "warehouse_id": "w2", "on_hand": 5, "available": 5},
        ],
    )
    write(
        hub,
        PURCHASE_ORDERS,
        [{"purchase_order_id": "p1", "status": "open"}, {"purchase_order_id": "p2", "status": "cancelled"}],
    )
    write(
        hub,
        PURCHASE_ORDER_LINES,
        [
            {"purchase_order_id": "p1", "line_id": 1, "sku": "A", "quantity_ordered": 8, "quantity_received": 3},
            {"purchase_order_id": "p2", "line_id": 1, "sku": "A", "quantity_ordered": 50, "quantity_received": 0},
        ],
    )
    return hub


def test_daily_demand_takes_the_larger_source_per_day_and_skips_cancelled_orders(small_world: HubResource):
    demand = daily_demand(small_world, 182)
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    assert list(demand.index) == ["A", "B"]
    assert (demand.columns[0], demand.columns[-1]) == (FIRST_DAY, last)  # the window starts where the data does
    assert list(daily_demand(small_world, 28).columns) == [last - timedelta(days=d) for d in range(27, -1, -1)]
    assert demand.loc["A", FIRST_DAY + timedelta(days=30)] == 5  # the cancelled 100 is not demand
    assert demand.loc["B", FIRST_DAY + timedelta(days=DAYS - 7)] == 3  # orders 3 beat analytics 1
    assert demand.loc["B", FIRST_DAY + timedelta(days=DAYS - 6)] == 9  # orders 9 beat analytics 0
    assert demand.loc["B", FIRST_DAY + timedelta(days=DAYS - 2)] == 4  # analytics only


def test_the_small_world_gets_known_forecasts_and_suggestions(small_world: HubResource, rules: RulesResource):
    result = materialize(small_world, rules)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    forecast = small_world.read_frame(f"SELECT * FROM {DEMAND_FORECAST.name} ORDER BY sku, forecast_date")
    a = forecast[forecast["sku"] == "A"]
    assert len(a) == 28 and len(forecast) == 56
    np.testing.assert_allclose(a["forecast_units"], 5.0, atol=1e-6)
    assert a["forecast_date"].iloc[0] == "2026-03-12" and a["forecast_date"].iloc[-1] == "2026-04-08"
    assert set(forecast["as_of_date"]) == {"2026-03-11"}
    suggestions = small_world.read_frame(f"SELECT * FROM {REPLENISHMENT_SUGGESTIONS.name} ORDER BY sku").set_index(
        "sku"
    )
    row = suggestions.loc["A"]
    assert (row["supplier_id"], row["lead_time_days"], row["location"]) == ("fast", 5, "all")
    assert row["safety_stock"] == pytest.approx(0, abs=1e-6)
    assert row["reorder_point"] == pytest.approx(25, abs=1e-4)  # 5 a day over 5 days, no uncertainty
    assert (row["on_hand"], row["available"], row["inbound_units"]) == (17, 15, 5)
    # position 20 <= 25: order up to 5 x (5 + 7) = 60, i.e. 40, raised to the supplier's minimum of 200
    assert bool(row["needs_reorder"]) and row["suggested_order_qty"] == 200
    b = suggestions.loc["B"]
    assert pd.isna(b["supplier_id"]) and b["lead_time_days"] == RULES.safety_stock.default_lead_time_days
    assert b["safety_stock"] > 0 and b["z_score"] == pytest.approx(1.6449, abs=1e-4)
    assert b["reorder_point"] == pytest.approx(b["forecast_lead_time_units"] + b["safety_stock"], abs=1e-3)
    expected = math.ceil(b["reorder_point"] + forecast[forecast["sku"] == "B"]["forecast_units"].iloc[14:21].sum())
    assert b["suggested_order_qty"] == expected  # nothing in stock: order up to lead time + review period
    metadata = forecast_metadata(result)
    assert metadata["dagster/row_count"] == 56
    assert metadata["backtest_wape_method"] >= 0 and "backtest_wape_naive_last_week" in metadata


def test_an_empty_hub_publishes_empty_tables(hub: HubResource, rules: RulesResource):
    result = dg.materialize(forecasting_assets, resources={"hub": hub, "rules": rules})
    assert result.success
    assert forecast_metadata(result)["dagster/row_count"] == 0
    assert hub.scalar(f"SELECT count(*) FROM {REPLENISHMENT_SUGGESTIONS.name}") == 0


# --- the simulator ---------------------------------------------------------------------------------------------


def test_forecasts_from_a_simulator_fed_hub(simulator: Simulator, hub: HubResource, rules: RulesResource, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    write_supplier_feed(landing, date.today().isoformat(), World(seed=DEFAULT_SEED, products=DEFAULT_PRODUCTS), 0)
    resources = every_resource(simulator, hub, landing)
    assert dg.materialize([*orders_assets, *warehouse_assets], resources=resources).success
    result = materialize(hub, rules)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    demanded = hub.scalar(
        "SELECT count(DISTINCT l.sku) FROM core.order_lines l JOIN core.orders o ON o.order_id = l.order_id "
        "WHERE o.order_state <> 'Cancelled'"
    )
    forecast_skus = hub.scalar(f"SELECT count(DISTINCT sku) FROM {DEMAND_FORECAST.name}")
    assert demanded > 0 and forecast_skus == demanded
    assert hub.scalar(f"SELECT count(*) FROM {DEMAND_FORECAST.name}") == 28 * demanded
    suggestions = hub.read_frame(f"SELECT * FROM {REPLENISHMENT_SUGGESTIONS.name}")
    assert len(suggestions) == demanded and suggestions["supplier_id"].notna().any()
    assert (suggestions["suggested_order_qty"] >= 0).all()
    metadata = forecast_metadata(result)
    assert metadata["backtest_days"] == 28 and metadata["backtest_skus"] == demanded
    assert metadata["backtest_mape_method"] >= 0 and metadata["backtest_mape_naive_last_week"] >= 0
