"""Product experience: a hand-built catalog with known answers, dense ranks, and the simulator's world."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.aggregation import PRODUCT_EXPERIENCE, aggregation_assets, bestseller_ranks, conversion_rate
from assets.analytics import PRODUCT_DAILY_METRICS, analytics_assets
from assets.commerce import CHANNELS, INVENTORY_ENTRIES, PRICES, PRODUCT_VARIANTS, PRODUCTS, commerce_assets
from quality.aggregation import AGGREGATION_SUITES
from quality.checks import build_suite_checks
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource
from tests.conftest import Simulator, every_resource


@pytest.fixture
def hub(each_hub: HubResource) -> HubResource:
    """Every serving test here runs on DuckDB and on Postgres."""
    return each_hub


REPO_RULES = Path(__file__).resolve().parents[2] / "dagster_project" / "rules.yaml"
CHECKS = build_suite_checks(AGGREGATION_SUITES, pool=HUB_POOL)


def write(hub: HubResource, spec: TableSpec, rows: list[dict]) -> None:
    with hub.load(f"test:{spec.name}") as load:
        load.stage(spec).append(spec.to_arrow({c: [r.get(c) for r in rows] for c in spec.column_names}))


def materialize(hub: HubResource) -> dg.ExecuteInProcessResult:
    resources = {"hub": hub, "rules": RulesResource(path=str(REPO_RULES))}
    return dg.materialize([*aggregation_assets, *CHECKS], resources=resources)


def served(hub: HubResource) -> dict[str, dict]:
    frame = hub.read_frame(f"SELECT * FROM {PRODUCT_EXPERIENCE.name}")
    return {r["product_id"]: r for r in frame.to_dict("records")}


def test_a_hand_built_catalog(hub: HubResource):
    names = {"p1": {"en-US": "Glow", "fr-FR": "Eclat"}, "p2": {"en-US": "Matte"}, "p3": {"en-US": "Plain"}}
    write(hub, PRODUCTS, [{"product_id": p, "version": 1, "product_key": f"k-{p}", "name": orjson.dumps(n).decode(),
                           "published": True} for p, n in names.items()])  # fmt: skip
    write(hub, PRODUCT_VARIANTS, [
        {"product_id": "p1", "variant_id": 1, "sku": "S1A"}, {"product_id": "p1", "variant_id": 2, "sku": "S1B"},
        {"product_id": "p2", "variant_id": 1, "sku": "S2A"}, {"product_id": "p3", "variant_id": 1, "sku": "S3A"},
    ])  # fmt: skip
    expired = datetime.now(UTC) - timedelta(days=1)
    write(hub, PRICES, [
        {"price_id": "a", "product_id": "p1", "variant_id": 1, "currency": "EUR", "cent_amount": 1200},
        {"price_id": "b", "product_id": "p1", "variant_id": 2, "currency": "EUR", "cent_amount": 1500},
        {"price_id": "c", "product_id": "p1", "variant_id": 1, "currency": "USD", "cent_amount": 1300},
        {"price_id": "d", "product_id": "p1", "currency": "EUR", "cent_amount": 99, "valid_until": expired},
        {"price_id": "e", "product_id": "p2", "variant_id": 1, "currency": "GBP", "cent_amount": 800},
    ])  # fmt: skip
    write(hub, CHANNELS, [{"channel_id": c, "version": 1, "country": k} for c, k in
                          (("ch-us", "US"), ("ch-fr", "FR"), ("ch-gb", "GB"), ("ch-jp", "JP"))])  # fmt: skip
    stock = [("i1", "S1A", "ch-fr", 5), ("i2", "S1B", "ch-us", 0), ("i3", "S1B", "ch-gb", 2),
             ("i4", "S2A", "ch-jp", 4), ("i5", "S3A", "ch-us", -1)]  # fmt: skip
    write(hub, INVENTORY_ENTRIES, [{"inventory_entry_id": i, "version": 1, "sku": s, "supply_channel_id": c,
                                    "available_quantity": q} for i, s, c, q in stock])  # fmt: skip
    newest = date(2026, 3, 31)
    day = lambda n: (newest - timedelta(days=n)).isoformat()  # noqa: E731
    write(hub, PRODUCT_DAILY_METRICS, [
        {"metric_date": day(0), "sku": "S1A", "items_viewed": 10, "items_added_to_cart": 4, "items_purchased": 2},
        {"metric_date": day(29), "sku": "S1B", "items_viewed": 10, "items_added_to_cart": 1, "items_purchased": 1},
        {"metric_date": day(30), "sku": "S1B", "items_viewed": 99, "items_added_to_cart": 99, "items_purchased": 99},
        {"metric_date": day(3), "sku": "S2A", "items_viewed": 30, "items_added_to_cart": 5, "items_purchased": 3},
        {"metric_date": day(3), "sku": "S3A", "items_viewed": 0, "items_added_to_cart": 0, "items_purchased": 0},
    ])  # fmt: skip

    result = materialize(hub)
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    got = served(hub)
    p1, p2, p3 = got["p1"], got["p2"], got["p3"]
    assert orjson.loads(p1["name"]) == names["p1"]
    assert p1["variant_count"] == 2 and p3["variant_count"] == 1
    assert orjson.loads(p1["price_ranges"]) == {"EUR": {"min": 1200, "max": 1500}, "USD": {"min": 1300, "max": 1300}}
    assert orjson.loads(p3["price_ranges"]) == {}
    assert (p1["in_stock"], p2["in_stock"], p3["in_stock"]) == (True, True, False)
    assert orjson.loads(p1["in_stock_by_region"]) == {"north-america": False, "europe": True, "united-kingdom": True}
    assert not any(orjson.loads(p2["in_stock_by_region"]).values())  # JP is in no region: in stock overall only
    assert (p1["available_quantity"], p3["available_quantity"]) == (7, 0)
    assert (p1["views_30d"], p1["add_to_carts_30d"], p1["purchases_30d"]) == (20, 5, 3)  # day 30 is outside
    assert p1["conversion_rate"] == 3 / 20 and p3["conversion_rate"] == 0.0
    assert (p1["bestseller_rank"], p2["bestseller_rank"], p3["bestseller_rank"]) == (2, 1, 3)  # 3 = 3: more views
    assert (p1["metrics_from"], p1["metrics_to"]) == (day(29), day(0))
    document = orjson.loads(p1["document"])
    assert document["price_ranges"]["EUR"]["min"] == 1200 and document["bestseller_rank"] == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=30))
def test_bestseller_ranks_are_dense_and_ordered(funnel):
    frame = pd.DataFrame(
        {
            "product_id": [f"p{i:03d}" for i in range(len(funnel))],
            "purchases_30d": [p for p, _ in funnel],
            "views_30d": [v for _, v in funnel],
        }
    )
    ranks = bestseller_ranks(frame, "purchases")
    assert sorted(ranks) == list(range(1, len(frame) + 1))
    ordered = frame.assign(rank=ranks).sort_values("rank")
    keys = list(zip(-ordered["purchases_30d"], -ordered["views_30d"], ordered["product_id"], strict=True))
    assert keys == sorted(keys)


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_conversion_rate_is_a_probability(purchases, views):
    rate = conversion_rate(purchases, views)
    assert 0.0 <= rate <= 1.0
    assert rate == (0.0 if views == 0 else min(purchases / views, 1.0))


def test_the_simulator_world(simulator: Simulator, hub: HubResource, tmp_path: Path):
    resources = every_resource(simulator, hub, tmp_path)
    assert dg.materialize(commerce_assets, resources=resources).success
    last = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    first = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    assert dg.materialize(analytics_assets, resources=resources, tags=tags).success
    result = materialize(hub)
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    frame = hub.read_frame(f"SELECT * FROM {PRODUCT_EXPERIENCE.name}")
    assert len(frame) == simulator.stats()["commerce"]["products"] > 0
    assert sorted(frame["bestseller_rank"]) == list(range(1, len(frame) + 1))
    assert frame["in_stock"].any() and frame["views_30d"].sum() > 0
    window = hub.read_frame(
        "SELECT sum(items_purchased) AS n FROM core.product_daily_metrics WHERE metric_date >= ?", [first]
    )
    assert frame["purchases_30d"].sum() == window["n"].iloc[0]
    top = frame.sort_values("bestseller_rank").iloc[0]
    assert top["purchases_30d"] == frame["purchases_30d"].max()
