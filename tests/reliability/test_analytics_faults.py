"""The analytics report API under faults: complete and exact when it can be, a clear error when it cannot.

Analytics lands one daily partition at a time, so most of these run the resource's paged report
directly; malformed rows are followed through a real materialization into the hub and its quarantine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import orjson
import pytest

from assets.analytics import PRODUCT_DAILY_METRICS, RAW_REPORT_ROWS, SOURCE, analytics_assets
from quality.quarantine import QUARANTINE
from resources.analytics import AnalyticsResource
from resources.http import ExternalSystemError
from resources.hub import HubResource
from tests.conftest import Simulator

SURVIVED = {
    "429 Retry-After HTTP-date": {"status": 429, "retry_after": "0", "retry_after_form": "http-date", "every": 2},
    "5xx bursts": {"status": 503, "next": 3},
    "reset mid-body": {"kind": "reset", "every": 2},
    "truncated JSON": {"kind": "truncate", "every": 2},
    "empty page claiming more": {"kind": "empty_page", "every": 2},
    "slower than read timeout": {"kind": "delay", "delay_ms": 700, "next": 1},
}


def analytics(sim: Simulator, **overrides) -> AnalyticsResource:
    return AnalyticsResource(
        api_url=f"{sim.url}/analytics/v1",
        property_id="123456789",
        api_key="an_test_hub",
        page_size=200,
        backoff_initial_s=0.01,
        backoff_max_s=0.2,
        **overrides,
    )


END = datetime.now(UTC).date() - timedelta(days=1)
DAYS = [(END - timedelta(days=n)).isoformat() for n in (2, 1, 0)]


def report(sim: Simulator, **overrides) -> list[tuple]:
    pages = analytics(sim, **overrides).report_pages(DAYS[0], DAYS[-1])
    return [tuple(sorted(row.items())) for page in pages for row in page]


@pytest.mark.parametrize("fault", list(SURVIVED))
def test_a_report_under_a_fault_is_complete_and_exact(fault: str, sim: Simulator, matrix):
    clean = report(sim)
    assert len(clean) > 200  # more than one page
    sim.admin("POST", "faults", faults=[{**SURVIVED[fault], "path_prefix": "/analytics"}])
    assert report(sim, read_timeout_s=0.4) == clean
    assert sum(sim.admin("GET", "faults")["fired"].values()) >= 1
    matrix.proved(f"analytics: {fault}", "complete", records=len(clean))


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"kind": "empty_page", "every": 1}, ["analytics", "runReport", "ended at row 0", "3 attempt(s)"]),
        ({"kind": "expire_token", "every": 1}, ["analytics", "runReport", "HTTP 401"]),
        ({"status": 502, "every": 1}, ["analytics", "runReport", "HTTP 502", "3 attempt(s)"]),
    ],
)
def test_a_report_that_cannot_be_read_fails_clearly(rule: dict, words: list[str], sim: Simulator, matrix):
    sim.admin("POST", "faults", faults=[{**rule, "path_prefix": "/analytics"}])
    with pytest.raises(ExternalSystemError) as failure:
        report(sim, max_attempts=3)
    assert all(w in str(failure.value) for w in words), str(failure.value)
    assert "an_test_hub" not in str(failure.value)
    matrix.proved(f"analytics: {rule.get('kind', rule.get('status'))} for ever", "give-up", errors=1)


def canonical(items: list) -> list[bytes]:
    """JSON values in a comparable order (Postgres jsonb sorts object keys)."""
    return sorted(orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in items)


def served_row(row: dict, variant: str) -> dict:
    """The GA4 row the simulator served for a clean report row, broken as the `malformed` fault breaks it."""
    metrics = [str(row[m]) for m in ("items_viewed", "items_added_to_cart", "items_purchased")]
    served = {
        "dimensionValues": [{"value": row["date"].replace("-", "")}, {"value": row["item_id"]}],
        "metricValues": [{"value": v} for v in [*metrics, row["item_revenue"]]],
    }
    if variant == "missing_id":
        del served["dimensionValues"][1]["value"]
    else:
        served["metricValues"][0]["value"] = "not-a-number"
    return served


@pytest.mark.parametrize(
    ("variant", "reason"),
    [("missing_id", "itemId has no value"), ("wrong_type", "itemsViewed 'not-a-number' is not an integer")],
)
def test_malformed_report_rows_are_quarantined_and_every_valid_row_loads(
    variant: str, reason: str, sim: Simulator, each_hub: HubResource, matrix
):
    hub = each_hub
    source = {(r["date"], r["item_id"]): r for page in analytics(sim).report_pages(DAYS[0], DAYS[-1]) for r in page}
    assert len(source) > 400  # three days, several pages
    rule = {"kind": "malformed", "variant": variant, "every": 2, "seed": 11, "path_prefix": "/analytics"}
    sim.admin("POST", "faults", faults=[rule])
    tags = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}
    result = dg.materialize(analytics_assets, resources={"hub": hub, "analytics": analytics(sim)}, tags=tags)
    assert result.success
    broken = sim.admin("GET", "faults")["fired"]["malformed"]
    assert broken >= 2

    core = hub.read_frame(f"SELECT * FROM {PRODUCT_DAILY_METRICS.name}").to_dict("records")
    loaded = {(r["metric_date"], r["sku"]): r for r in core}
    missing = set(source) - set(loaded)
    assert len(missing) == broken and set(loaded) <= set(source)
    for key, row in loaded.items():  # every valid row, with the source's numbers
        expected = source[key]
        assert [row[c] for c in ("items_viewed", "items_added_to_cart", "items_purchased")] == [
            expected["items_viewed"],
            expected["items_added_to_cart"],
            expected["items_purchased"],
        ]
        assert row["item_revenue_minor"] == int(Decimal(expected["item_revenue"]) * 100)
    assert hub.row_count(RAW_REPORT_ROWS) == len(loaded)

    quarantined = hub.read_frame(f"SELECT dataset, source, batch, reason, record FROM {QUARANTINE.name}")
    assert set(quarantined["dataset"]) == {PRODUCT_DAILY_METRICS.name} and set(quarantined["source"]) == {SOURCE}
    assert all(reason in r and PRODUCT_DAILY_METRICS.name in r for r in quarantined["reason"])
    records = [
        (batch, orjson.loads(record) if isinstance(record, str) else record)
        for batch, record in zip(quarantined["batch"], quarantined["record"], strict=True)
    ]
    expected_records = [(key[0], served_row(source[key], variant)) for key in missing]
    assert canonical(records) == canonical(expected_records)

    counts = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    metadata = {k: v.value for k, v in counts["product_daily_metrics"].items()}
    assert metadata["report_rows"] == len(source) == metadata["loaded_rows"] + metadata["quarantined_rows"]
    assert metadata["quarantined_rows"] == broken
    matrix.proved(f"analytics: malformed record ({variant})", "complete", records=len(source), quarantined=broken)
