"""AnalyticsResource against the simulator over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from resources.analytics import AnalyticsResource
from resources.http import ExternalSystemError
from simulators.analytics import EXPIRED_ACCESS_TOKEN
from tests.conftest import Simulator, free_port

PROPERTY = "123456789"
KEY = "an_test_hub"
WRONG_KEY = "an_wrong_7c1e"


def analytics_resource(simulator: Simulator, **overrides) -> AnalyticsResource:
    settings = dict(
        api_url=f"{simulator.url}/analytics/v1",
        property_id=PROPERTY,
        api_key=KEY,
        backoff_initial_s=0.01,
        backoff_max_s=0.2,
    )
    return AnalyticsResource(**{**settings, **overrides})


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def test_a_paged_export_is_complete_with_no_duplicates(simulator: Simulator):
    expected = simulator.admin("GET", "analytics/rows", start=days_ago(5), end=days_ago(1))
    resource = analytics_resource(simulator, page_size=250)
    pages = list(resource.report_pages(days_ago(5), days_ago(1)))
    keys = [(r["date"], r["item_id"]) for page in pages for r in page]
    assert len(keys) == len(set(keys)) == expected["rows"]
    assert len(pages) == -(-expected["rows"] // 250) and all(len(p) <= 250 for p in pages)
    assert keys == sorted(keys)
    per_day: dict[str, int] = {}
    for day, _sku in keys:
        per_day[day] = per_day.get(day, 0) + 1
    assert per_day == expected["by_date"]
    assert simulator.stats()["analytics"]["reports_served"] == len(pages)


def test_rows_are_flat_and_typed(simulator: Simulator):
    page = next(analytics_resource(simulator).report_pages(days_ago(1), days_ago(1)))
    row = page[0]
    assert set(row) == {
        "date",
        "item_id",
        "items_viewed",
        "items_added_to_cart",
        "items_purchased",
        "item_revenue",
        "currency",
    }
    assert row["date"] == days_ago(1) and row["currency"] == "USD"
    assert all(isinstance(r[k], int) for r in page for k in ("items_viewed", "items_added_to_cart", "items_purchased"))
    assert all(isinstance(r["item_revenue"], str) for r in page)


@pytest.mark.parametrize(
    ("variant", "reason", "readable"),
    [
        ("missing_id", "itemId has no value", {"date"}),
        ("wrong_type", "itemsViewed 'not-a-number' is not an integer", {"date", "item_id"}),
    ],
)
def test_an_unreadable_row_comes_marked_with_the_reason_and_the_rest_typed(
    simulator: Simulator, variant: str, reason: str, readable: set[str]
):
    clean = next(analytics_resource(simulator, page_size=100).report_pages(days_ago(1), days_ago(1)))
    rule = {"kind": "malformed", "variant": variant, "next": 1, "path_prefix": "/analytics"}
    simulator.admin("POST", "faults", faults=[rule])
    page = next(analytics_resource(simulator, page_size=100).report_pages(days_ago(1), days_ago(1)))
    marked = [i for i, row in enumerate(page) if "unreadable" in row]
    assert len(marked) == 1 and len(page) == len(clean)
    bad = page[marked[0]]
    assert bad["unreadable"] == reason and set(bad) == {*readable, "unreadable", "row", "currency"}
    assert all(bad[k] == clean[marked[0]][k] for k in readable)
    assert set(bad["row"]) == {"dimensionValues", "metricValues"}
    assert [row for i, row in enumerate(page) if i != marked[0]] == [r for i, r in enumerate(clean) if i != marked[0]]


def test_an_expired_key_is_reported_as_expired_naming_the_setting(simulator: Simulator):
    resource = analytics_resource(simulator, api_key=EXPIRED_ACCESS_TOKEN)
    with pytest.raises(ExternalSystemError) as failure:
        list(resource.report_pages(days_ago(1), days_ago(1)))
    message = str(failure.value)
    assert "the API key has expired (ACCESS_TOKEN_EXPIRED)" in message and "(check ANALYTICS_API_KEY)" in message
    assert EXPIRED_ACCESS_TOKEN not in message


def test_an_empty_range_yields_no_pages(simulator: Simulator):
    assert list(analytics_resource(simulator).report_pages(days_ago(-1), days_ago(-3))) == []
    assert list(analytics_resource(simulator).report_pages("2016-01-01", "2016-01-31")) == []


def test_transient_failures_are_retried_without_losing_rows(simulator: Simulator):
    expected = simulator.admin("GET", "analytics/rows", start=days_ago(2), end=days_ago(1))["rows"]
    faults = [
        {"status": 503, "every": 3, "path_prefix": "/analytics"},
        {"kind": "truncate", "every": 4, "path_prefix": "/analytics"},
    ]
    simulator.admin("POST", "faults", faults=faults)
    rows = [
        r for page in analytics_resource(simulator, page_size=100).report_pages(days_ago(2), days_ago(1)) for r in page
    ]
    assert len({(r["date"], r["item_id"]) for r in rows}) == len(rows) == expected
    assert simulator.stats()["requests"]["by_status"].get("503", 0) > 0


def test_a_wrong_key_names_the_setting_and_never_the_key(simulator: Simulator):
    with pytest.raises(ExternalSystemError) as failure:
        list(analytics_resource(simulator, api_key=WRONG_KEY).report_pages(days_ago(1), days_ago(1)))
    message = str(failure.value)
    assert "ANALYTICS_API_KEY" in message and "HTTP 401" in message
    assert WRONG_KEY not in message and KEY not in message


def test_an_unknown_property_names_the_setting(simulator: Simulator):
    with pytest.raises(ExternalSystemError, match=r"property '42' not found .*ANALYTICS_PROPERTY_ID"):
        list(analytics_resource(simulator, property_id="42").report_pages(days_ago(1), days_ago(1)))


def test_an_unreachable_api_names_the_url_setting(simulator: Simulator):
    resource = analytics_resource(simulator, api_url=f"http://127.0.0.1:{free_port()}/analytics/v1", max_attempts=2)
    with pytest.raises(ExternalSystemError, match=r"failed after 2 attempt.*ANALYTICS_API_URL"):
        list(resource.report_pages(days_ago(1), days_ago(1)))


def test_a_refused_request_is_reported_with_the_source_message(simulator: Simulator):
    with pytest.raises(ExternalSystemError, match=r"HTTP 400: .*dateRanges\[0\]\.startDate"):
        list(analytics_resource(simulator).report_pages("not-a-date", days_ago(1)))
