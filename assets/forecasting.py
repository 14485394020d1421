"""Demand forecast and replenishment: daily demand per SKU, a 28-day forecast, reorder points.

Daily demand per SKU and UTC day is the larger of two counts of the same purchases: units on
order lines of orders not cancelled (day of `core.orders.created_at`) and analytics
`items_purchased` (`core.product_daily_metrics`). Taking the maximum, not the sum, avoids counting
a purchase twice while covering what either source misses (analytics blocked by consent, orders
from a channel the shop front does not track). Days with neither are zero demand.

The forecast is additive Holt-Winters exponential smoothing with a damped trend and a weekly
season, in numpy (`holt_winters`); its parameters live in the `forecasting` section of the rules
file. A backtest holds out the last `backtest_days`, refits on the rest and compares the method
with the naive "same weekday last week" forecast (`backtest`); WAPE is the headline error because
daily volumes per SKU are tiny and often zero, where per-day MAPE is undefined. On intermittent
demand WAPE rewards forecasting zero (which the naive copy of a quiet week often does), so MAPE over
the daily totals across SKUs is reported beside it.
"""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pydantic
from pydantic import Field

from assets.analytics import PRODUCT_DAILY_METRICS
from assets.landing import asset_key, materialization
from assets.orders import ORDER_LINES, ORDERS
from assets.warehouse import PURCHASE_ORDER_LINES, PURCHASE_ORDERS, STOCK_LEVELS, SUPPLIER_OFFERS, SUPPLIERS
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource

GROUP = "serving"
OVERALL = "all"
OPEN_PO_STATUSES = ("open", "partially_received")

DEMAND_FORECAST = TableSpec(
    "serving.v1_demand_forecast",
    (
        ("sku", "text"),
        ("forecast_date", "text"),
        ("forecast_units", "double"),
        ("method", "text"),
        ("as_of_date", "text"),
    ),
    ("sku", "forecast_date"),
    merge="replace",
    description="Forecast units sold per SKU and day for the next horizon days (Holt-Winters, weekly season).",
)
REPLENISHMENT_SUGGESTIONS = TableSpec(
    "serving.v1_replenishment_suggestions",
    (
        ("sku", "text"),
        ("location", "text"),
        ("as_of_date", "text"),
        ("supplier_id", "text"),
        ("lead_time_days", "int"),
        ("forecast_lead_time_units", "double"),
        ("demand_std_daily", "double"),
        ("service_level", "double"),
        ("z_score", "double"),
        ("safety_stock", "double"),
        ("reorder_point", "double"),
        ("on_hand", "bigint"),
        ("available", "bigint"),
        ("inbound_units", "bigint"),
        ("min_order_qty", "bigint"),
        ("suggested_order_qty", "bigint"),
        ("needs_reorder", "bool"),
    ),
    ("sku", "location"),
    merge="replace",
    description="Reorder point, stock position and suggested order quantity per SKU, with the supplier to order from.",
)
FORECASTING_SERVING_TABLES = (DEMAND_FORECAST, REPLENISHMENT_SUGGESTIONS)


class Smoothing(pydantic.BaseModel):
    """Holt-Winters smoothing weights (level, trend, season) and the trend damping factor."""

    alpha: float = Field(gt=0, lt=1)
    beta: float = Field(ge=0, lt=1)
    gamma: float = Field(ge=0, lt=1)
    phi: float = Field(gt=0, le=1)


class SafetyStock(pydantic.BaseModel):
    """Safety stock = z(service_level) x daily demand std-dev x sqrt(lead time days)."""

    service_level: float = Field(gt=0.5, lt=1)
    review_period_days: int = Field(ge=0)
    default_lead_time_days: int = Field(ge=0)


class ForecastingRules(pydantic.BaseModel):
    """The `forecasting` section of the rules file."""

    horizon_days: int = Field(ge=1)
    history_days: int = Field(ge=14)
    season_length_days: int = Field(ge=1)
    backtest_days: int = Field(ge=1)
    smoothing: Smoothing
    safety_stock: SafetyStock

    @property
    def method(self) -> str:
        s = self.smoothing
        return (
            f"holt_winters_additive_damped(alpha={s.alpha},beta={s.beta},gamma={s.gamma},"
            f"phi={s.phi},season={self.season_length_days})"
        )


@dataclass(frozen=True)
class Fit:
    """Forecasts (skus x horizon, never negative) and one-step-ahead residual std-dev per SKU."""

    forecast: np.ndarray
    residual_std: np.ndarray


def holt_winters(history: np.ndarray, horizon: int, season: int, smoothing: Smoothing) -> Fit:
    """Additive damped Holt-Winters, fitted for every row of `history` (skus x days) at once.

    The level starts at the first season's mean, the trend at the change between the first two
    seasons' means (zero with less than two seasons), the season at the first season's deviations.
    """
    y = np.asarray(history, dtype=float)
    if y.ndim != 2 or y.shape[1] < season:
        raise ValueError(f"history needs at least one season ({season} days) per SKU, got shape {y.shape}")
    a, b, g, phi = smoothing.alpha, smoothing.beta, smoothing.gamma, smoothing.phi
    days = y.shape[1]
    level = y[:, :season].mean(axis=1)
    trend = (y[:, season : 2 * season].mean(axis=1) - level) / season if days >= 2 * season else np.zeros(len(y))
    seasonal = y[:, :season] - level[:, None]
    errors = np.zeros_like(y)
    for t in range(days):
        s = t % season
        errors[:, t] = y[:, t] - (level + phi * trend + seasonal[:, s])
        new_level = a * (y[:, t] - seasonal[:, s]) + (1 - a) * (level + phi * trend)
        trend = b * (new_level - level) + (1 - b) * phi * trend
        seasonal[:, s] = g * (y[:, t] - new_level) + (1 - g) * seasonal[:, s]
        level = new_level
    damping = np.cumsum(phi ** np.arange(1, horizon + 1))
    steps = np.arange(days, days + horizon) % season
    forecast = level[:, None] + damping[None, :] * trend[:, None] + seasonal[:, steps]
    warm = errors[:, season:] if days > 2 * season else y
    return Fit(np.clip(forecast, 0, None), warm.std(axis=1))


def naive_last_week(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The naive baseline: each day forecast as the same weekday of the last week."""
    last = np.asarray(history, dtype=float)[:, -season:]
    return last[:, np.arange(horizon) % season]


def wape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Weighted absolute percentage error: sum |error| / sum actual, in percent (None without demand)."""
    total = float(np.abs(actual).sum())
    return None if total == 0 else 100 * float(np.abs(actual - forecast).sum()) / total


def mape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Mean absolute percentage error over the days with demand, in percent (None without any)."""
    demand = actual != 0
    if not demand.any():
        return None
    return 100 * float(np.mean(np.abs((actual[demand] - forecast[demand]) / actual[demand])))


def backtest(history: np.ndarray, rules: ForecastingRules) -> dict[str, Any]:
    """Hold out the last `backtest_days`, fit on the rest, score the method and the naive baseline.

    WAPE is over every SKU-day; MAPE is over the daily totals across SKUs (per-SKU days are mostly zero).
    Fitting needs two seasons: a shorter history holds out fewer days (reported), down to one season.
    """
    season = rules.season_length_days
    hold = min(rules.backtest_days, history.shape[1] - 2 * season)
    if hold < season or history.shape[0] == 0:
        return {"backtest_skipped": f"needs {3 * season} days of history and at least one SKU"}
    train, actual = history[:, :-hold], history[:, -hold:]
    method = holt_winters(train, hold, season, rules.smoothing).forecast
    naive = naive_last_week(train, hold, season)
    scores = {
        "backtest_days": hold,
        "backtest_skus": int(history.shape[0]),
        "backtest_wape_method": wape(actual, method),
        "backtest_wape_naive_last_week": wape(actual, naive),
        "backtest_mape_method": mape(actual.sum(axis=0), method.sum(axis=0)),
        "backtest_mape_naive_last_week": mape(actual.sum(axis=0), naive.sum(axis=0)),
    }
    return {k: v for k, v in scores.items() if v is not None}


def _utc_day(value: Any) -> date:
    stamp = pd.Timestamp(value)
    return (stamp.tz_convert(UTC) if stamp.tzinfo else stamp).date()


def daily_demand(hub: HubResource, history_days: int, min_days: int = 14) -> pd.DataFrame:
    """Units per SKU (rows) and UTC day (columns, oldest first); SKUs without demand are left out.

    The last day is the newest day with demand in either source. The window reaches back
    `history_days`, but not before the oldest day either source has (zero-filling days before the
    data begins would read as a sales drop), and always spans at least `min_days`. Each cell is the
    larger of the order-line units and the analytics purchases of that SKU and day.
    """
    has_orders = all(hub.backend.table_exists(t.name) for t in (ORDERS, ORDER_LINES))
    has_metrics = hub.backend.table_exists(PRODUCT_DAILY_METRICS.name)
    not_cancelled = "(o.order_state IS NULL OR o.order_state <> 'Cancelled')"
    spans = []
    if has_orders:
        oldest, newest = hub.read_frame(
            "SELECT min(o.created_at) AS oldest, max(o.created_at) AS newest FROM core.orders o "
            f"JOIN core.order_lines l ON l.order_id = o.order_id WHERE {not_cancelled}"
        ).iloc[0]
        if pd.notna(newest):
            spans.append((_utc_day(oldest), _utc_day(newest)))
    if has_metrics:
        oldest, newest = hub.read_frame(
            "SELECT min(metric_date) AS oldest, max(metric_date) AS newest FROM core.product_daily_metrics "
            "WHERE items_purchased > 0"
        ).iloc[0]
        if pd.notna(newest):
            spans.append((date.fromisoformat(oldest), date.fromisoformat(newest)))
    if not spans:
        return pd.DataFrame()
    last = max(newest for _, newest in spans)
    oldest = min(oldest for oldest, _ in spans)
    first = max(last - timedelta(days=history_days - 1), min(oldest, last - timedelta(days=min_days - 1)))
    history_days = (last - first).days + 1
    parts = []
    if has_orders:
        lines = hub.read_frame(
            "SELECT l.sku, l.quantity, o.created_at FROM core.order_lines l "
            f"JOIN core.orders o ON o.order_id = l.order_id WHERE {not_cancelled} AND o.created_at >= ?",
            [datetime.combine(first, datetime.min.time(), UTC)],
        )
        if len(lines):
            lines["day"] = pd.to_datetime(lines["created_at"], utc=True).dt.date
            parts.append(lines.groupby(["sku", "day"])["quantity"].sum().rename("orders"))
    if has_metrics:
        metrics = hub.read_frame(
            "SELECT sku, metric_date, items_purchased FROM core.product_daily_metrics "
            "WHERE metric_date >= ? AND metric_date <= ?",
            [first.isoformat(), last.isoformat()],
        )
        if len(metrics):
            metrics["day"] = metrics["metric_date"].map(date.fromisoformat)
            parts.append(metrics.groupby(["sku", "day"])["items_purchased"].sum().rename("analytics"))
    if not parts:
        return pd.DataFrame()
    combined = pd.concat(parts, axis=1).fillna(0).max(axis=1)
    combined = combined[combined.index.get_level_values("sku").notna()]
    table = combined.unstack("day", fill_value=0.0)
    days = [first + timedelta(days=i) for i in range(history_days)]
    table = table.reindex(columns=days, fill_value=0.0).fillna(0.0)
    return table[table.sum(axis=1) > 0].sort_index()


def forecast_rows(demand: pd.DataFrame, rules: ForecastingRules) -> tuple[dict[str, list], Fit]:
    """The forecast table's columns for every SKU of `demand`, and the fit behind them."""
    fit = holt_winters(demand.to_numpy(), rules.horizon_days, rules.season_length_days, rules.smoothing)
    last = demand.columns[-1]
    dates = [(last + timedelta(days=h)).isoformat() for h in range(1, rules.horizon_days + 1)]
    skus = demand.index.tolist()
    rows = {
        "sku": [s for s in skus for _ in dates],
        "forecast_date": dates * len(skus),
        "forecast_units": [round(float(v), 4) for v in fit.forecast.ravel()],
        "method": [rules.method] * (len(skus) * len(dates)),
        "as_of_date": [last.isoformat()] * (len(skus) * len(dates)),
    }
    return rows, fit


def demand_over(forecast: np.ndarray, days: int) -> float:
    """Forecast units over the next `days` days; beyond the horizon, the last week's daily mean repeats."""
    covered = float(forecast[:days].sum())
    extra = max(days - len(forecast), 0)
    return covered + extra * float(forecast[-7:].mean()) if extra else covered


def preferred_suppliers(hub: HubResource) -> pd.DataFrame:
    """Per SKU the offer with the shortest supplier lead time, then the lowest unit cost, then supplier id."""
    if not all(hub.backend.table_exists(t.name) for t in (SUPPLIER_OFFERS, SUPPLIERS)):
        return pd.DataFrame(columns=["sku", "supplier_id", "lead_time_days", "min_order_qty"]).set_index("sku")
    offers = hub.read_frame(
        "SELECT f.sku, f.supplier_id, s.lead_time_days, f.min_order_qty, f.unit_cost_minor "
        "FROM core.supplier_offers f JOIN core.suppliers s ON s.supplier_id = f.supplier_id WHERE f.sku IS NOT NULL"
    )
    offers = offers.sort_values(["sku", "lead_time_days", "unit_cost_minor", "supplier_id"], na_position="last")
    return offers.drop_duplicates("sku").set_index("sku")[["supplier_id", "lead_time_days", "min_order_qty"]]


def stock_positions(hub: HubResource) -> pd.DataFrame:
    """On hand and available over every warehouse (WMS stock levels), and inbound open purchase-order units."""
    frames = []
    if hub.backend.table_exists(STOCK_LEVELS.name):
        frames.append(
            hub.read_frame(
                "SELECT sku, sum(on_hand) AS on_hand, sum(available) AS available FROM core.stock_levels GROUP BY sku"
            ).set_index("sku")
        )
    if all(hub.backend.table_exists(t.name) for t in (PURCHASE_ORDERS, PURCHASE_ORDER_LINES)):
        marks = ", ".join("?" for _ in OPEN_PO_STATUSES)
        inbound = hub.read_frame(
            "SELECT l.sku, sum(CASE WHEN l.quantity_ordered > l.quantity_received "
            "THEN l.quantity_ordered - l.quantity_received ELSE 0 END) AS inbound_units "
            "FROM core.purchase_order_lines l JOIN core.purchase_orders p ON p.purchase_order_id = l.purchase_order_id "
            f"WHERE p.status IN ({marks}) GROUP BY l.sku",
            list(OPEN_PO_STATUSES),
        )
        frames.append(inbound.set_index("sku"))
    positions = pd.concat(frames, axis=1) if frames else pd.DataFrame()
    for column in ("on_hand", "available", "inbound_units"):
        if column not in positions:
            positions[column] = 0
    return positions.fillna(0)


def replenishment_rows(
    demand: pd.DataFrame, fit: Fit, suppliers: pd.DataFrame, positions: pd.DataFrame, rules: ForecastingRules
) -> dict[str, list]:
    """One suggestion per SKU with demand.

    reorder point = forecast over the lead time + z x daily std-dev x sqrt(lead time). When the stock
    position (available + inbound) is at or below it, order up to the forecast over lead time plus
    review period plus safety stock, and at least the supplier's minimum order quantity.
    """
    policy = rules.safety_stock
    z = NormalDist().inv_cdf(policy.service_level)
    rows: dict[str, list] = {name: [] for name in REPLENISHMENT_SUGGESTIONS.column_names}
    for i, sku in enumerate(demand.index):
        supplier = suppliers.loc[sku] if sku in suppliers.index else None
        lead = policy.default_lead_time_days
        if supplier is not None and pd.notna(supplier["lead_time_days"]):
            lead = int(supplier["lead_time_days"])
        moq = int(supplier["min_order_qty"]) if supplier is not None and pd.notna(supplier["min_order_qty"]) else 1
        on_hand, available, inbound = 0, 0, 0
        if sku in positions.index:
            stock = positions.loc[sku]
            on_hand, available, inbound = int(stock["on_hand"]), int(stock["available"]), int(stock["inbound_units"])
        std = float(fit.residual_std[i])
        lead_demand = demand_over(fit.forecast[i], lead)
        safety = z * std * math.sqrt(lead)
        reorder_point = lead_demand + safety
        position = available + inbound
        needs = position <= reorder_point and reorder_point > 0
        quantity = 0
        if needs:
            target = demand_over(fit.forecast[i], lead + policy.review_period_days) + safety
            quantity = max(math.ceil(target - position), moq, 0)
        values = {
            "sku": sku,
            "location": OVERALL,
            "as_of_date": demand.columns[-1].isoformat(),
            "supplier_id": None if supplier is None else supplier["supplier_id"],
            "lead_time_days": lead,
            "forecast_lead_time_units": round(lead_demand, 4),
            "demand_std_daily": round(std, 4),
            "service_level": policy.service_level,
            "z_score": round(z, 4),
            "safety_stock": round(safety, 4),
            "reorder_point": round(reorder_point, 4),
            "on_hand": on_hand,
            "available": available,
            "inbound_units": inbound,
            "min_order_qty": moq,
            "suggested_order_qty": quantity,
            "needs_reorder": bool(needs),
        }
        for name, value in values.items():
            rows[name].append(value)
    return rows


@dg.multi_asset(
    name="demand_forecast_and_replenishment",
    specs=[
        dg.AssetSpec(
            asset_key(spec),
            deps=[
                asset_key(t)
                for t in (
                    ORDERS,
                    ORDER_LINES,
                    PRODUCT_DAILY_METRICS,
                    STOCK_LEVELS,
                    SUPPLIERS,
                    SUPPLIER_OFFERS,
                    PURCHASE_ORDERS,
                    PURCHASE_ORDER_LINES,
                )
            ],
            group_name=GROUP,
            description=spec.description,
            kinds={"python", "numpy"},
        )
        for spec in FORECASTING_SERVING_TABLES
    ],
    pool=HUB_POOL,
)
def demand_forecast_and_replenishment(context: dg.AssetExecutionContext, hub: HubResource, rules: RulesResource):
    """Forecast daily demand per SKU, backtest the method, and suggest what to reorder, in one load."""
    settings = rules.section("forecasting", ForecastingRules)
    demand = daily_demand(hub, settings.history_days, 2 * settings.season_length_days)
    forecast = {name: [] for name in DEMAND_FORECAST.column_names}
    suggestions = {name: [] for name in REPLENISHMENT_SUGGESTIONS.column_names}
    scores: dict[str, Any] = {"backtest_skipped": "no demand history"}
    if len(demand):
        forecast, fit = forecast_rows(demand, settings)
        suggestions = replenishment_rows(demand, fit, preferred_suppliers(hub), stock_positions(hub), settings)
        scores = backtest(demand.to_numpy(), settings)
        context.log.info(f"forecast {len(demand)} SKUs from {demand.columns[0]} to {demand.columns[-1]}: {scores}")
    with hub.load("serving:forecasting") as load:
        load.stage(DEMAND_FORECAST).append(DEMAND_FORECAST.to_arrow(forecast))
        load.stage(REPLENISHMENT_SUGGESTIONS).append(REPLENISHMENT_SUGGESTIONS.to_arrow(suggestions))
    yield materialization(hub, DEMAND_FORECAST, load, method=settings.method, skus=len(demand), **scores)
    yield materialization(
        hub, REPLENISHMENT_SUGGESTIONS, load, skus_to_reorder=sum(suggestions["needs_reorder"]), method=settings.method
    )


forecasting_assets = [demand_forecast_and_replenishment]
