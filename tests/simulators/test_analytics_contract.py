"""Contract tests for the GA4-shaped analytics simulator (real HTTP to the simulator subprocess)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from resources.commerce import CommerceToolsResource
from simulators.analytics import EXPIRED_ACCESS_TOKEN
from tests.conftest import Simulator

PROPERTY = "123456789"
KEY = "an_test_hub"
METRICS = ["itemsViewed", "itemsAddedToCart", "itemsPurchased", "itemRevenue"]
SKU_RE = re.compile(r"^[A-Z]{3}-\d{6}-\d{2}$")


def days_ago(n: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=n)


def report_body(start: str = "3daysAgo", end: str = "yesterday", **extra) -> dict:
    return {
        "dateRanges": [{"startDate": start, "endDate": end}],
        "dimensions": [{"name": "date"}, {"name": "itemId"}],
        "metrics": [{"name": m} for m in METRICS],
        **extra,
    }


def run_report(sim: Simulator, body: dict, *, key: str | None = KEY, prop: str = PROPERTY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return requests.post(f"{sim.url}/analytics/v1/properties/{prop}:runReport", json=body, headers=headers, timeout=30)


def ok(sim: Simulator, body: dict) -> dict:
    response = run_report(sim, body)
    assert response.status_code == 200, response.text
    return response.json()


def rows_of(report: dict) -> list[tuple]:
    return [
        (*(d["value"] for d in r["dimensionValues"]), *(m["value"] for m in r["metricValues"]))
        for r in report.get("rows", [])
    ]


def expected_rows(sim: Simulator, start: str, end: str) -> dict:
    return sim.admin("GET", "analytics/rows", start=start, end=end)


def google_error(response: requests.Response, status: int, name: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (status, name)
    return error["message"]


# ---------------------------------------------------------------------------------------------------
# shape and data
# ---------------------------------------------------------------------------------------------------


def test_report_shape_follows_ga4(simulator: Simulator):
    report = ok(simulator, report_body())
    assert report["kind"] == "analyticsData#runReport"
    assert report["dimensionHeaders"] == [{"name": "date"}, {"name": "itemId"}]
    assert report["metricHeaders"] == [
        {"name": "itemsViewed", "type": "TYPE_INTEGER"},
        {"name": "itemsAddedToCart", "type": "TYPE_INTEGER"},
        {"name": "itemsPurchased", "type": "TYPE_INTEGER"},
        {"name": "itemRevenue", "type": "TYPE_CURRENCY"},
    ]
    assert report["metadata"] == {"currencyCode": "USD", "timeZone": "Etc/UTC"}
    rows = rows_of(report)
    assert all(isinstance(v, str) for row in rows for v in row)
    assert {r[0] for r in rows} == {days_ago(n).strftime("%Y%m%d") for n in (1, 2, 3)}
    assert all(SKU_RE.match(r[1]) for r in rows)
    assert rows == sorted(rows, key=lambda r: (r[0], r[1])), "rows are ordered by (date, itemId)"
    assert report["rowCount"] == len(rows) == expected_rows(simulator, "3daysAgo", "yesterday")["rows"]


def test_funnels_are_plausible_and_revenue_is_the_catalog_price(simulator: Simulator, commerce: CommerceToolsResource):
    usd = {
        v["sku"]: p["value"]["centAmount"]
        for page in commerce.export_pages("product-projections")
        for product in page
        for v in [product["masterVariant"], *product["variants"]]
        for p in v["prices"]
        if p["value"]["currencyCode"] == "USD"
    }
    rows = rows_of(ok(simulator, report_body("7daysAgo", "yesterday")))
    assert rows
    for _day, sku, views, adds, purchases, revenue in rows:
        assert int(views) >= int(adds) >= int(purchases) >= 0 and int(views) > 0
        assert re.fullmatch(r"\d+\.\d{2}", revenue)
        assert Decimal(revenue) * 100 == int(purchases) * usd[sku]
    assert any(int(r[4]) > 0 for r in rows), "some items sell"


def test_data_is_sparse_and_deterministic_across_resets(simulator: Simulator):
    body = report_body("5daysAgo", "yesterday")
    first = rows_of(ok(simulator, body))
    skus = simulator.stats()["commerce"]["skus"]
    per_day = expected_rows(simulator, "5daysAgo", "yesterday")["by_date"]
    assert all(0 < n < skus for n in per_day.values()), "not every SKU has a row every day"
    simulator.reset()
    assert rows_of(ok(simulator, body)) == first
    simulator.reset(seed=8)
    assert rows_of(ok(simulator, body)) != first


def test_a_day_reads_the_same_whatever_the_world_size(simulator: Simulator):
    body = report_body("yesterday", "yesterday")
    small = rows_of(ok(simulator, body))
    simulator.reset(products=600)
    bigger = {r[1]: r for r in rows_of(ok(simulator, body))}
    assert all(bigger[r[1]] == r for r in small)
    assert len(bigger) > len(small)


def test_data_window_runs_from_400_days_back_to_yesterday(simulator: Simulator):
    stats = simulator.stats()["analytics"]
    assert stats["last_date"] == days_ago(1).isoformat()
    assert date.fromisoformat(stats["first_date"]) == date.fromisoformat(stats["last_date"]) - timedelta(days=399)
    assert "rows" not in ok(simulator, report_body("today", "today"))
    future = ok(simulator, report_body(days_ago(-3).isoformat(), days_ago(-5).isoformat()))
    assert "rows" not in future and "rowCount" not in future
    before = (date.fromisoformat(stats["first_date"]) - timedelta(days=1)).isoformat()
    assert "rows" not in ok(simulator, report_body(before, before))
    assert ok(simulator, report_body(stats["first_date"], stats["first_date"]))["rowCount"] > 0


def test_stats_count_reports_and_rows(simulator: Simulator):
    before = simulator.stats()["analytics"]
    ok(simulator, report_body(limit=5))
    after = simulator.stats()["analytics"]
    assert after["reports_served"] == before["reports_served"] + 1
    assert after["rows_served"] == before["rows_served"] + 5
    assert after["property_id"] == PROPERTY


# ---------------------------------------------------------------------------------------------------
# paging
# ---------------------------------------------------------------------------------------------------


def test_limit_and_offset_page_through_every_row_once(simulator: Simulator):
    everything = ok(simulator, report_body())
    pages, offset = [], 0
    while True:
        page = ok(simulator, report_body(limit=97, offset=offset))
        assert page["rowCount"] == everything["rowCount"]
        rows = rows_of(page)
        assert len(rows) <= 97
        pages.append(rows)
        offset += len(rows)
        if offset >= page["rowCount"]:
            break
    flat = [r for p in pages for r in p]
    assert flat == rows_of(everything)
    assert len(set(flat)) == len(flat) == everything["rowCount"]
    assert len(pages) == -(-everything["rowCount"] // 97)


def test_offset_past_the_end_and_limits_as_strings(simulator: Simulator):
    total = ok(simulator, report_body())["rowCount"]
    past = ok(simulator, report_body(offset=total + 10))
    assert "rows" not in past and past["rowCount"] == total
    assert len(rows_of(ok(simulator, report_body(limit="3", offset="2")))) == 3
    assert len(rows_of(ok(simulator, report_body(limit=10**9)))) == total, "limit is capped, not refused"


def test_dimensions_aggregate_what_they_leave_out(simulator: Simulator):
    detail = rows_of(ok(simulator, report_body()))
    by_date = rows_of(ok(simulator, report_body(dimensions=[{"name": "date"}])))
    sums: dict[str, list[Decimal]] = {}
    for day, _sku, *metrics in detail:
        acc = sums.setdefault(day, [Decimal(0)] * 4)
        for i, value in enumerate(metrics):
            acc[i] += Decimal(value)
    assert [(d, *(Decimal(v) for v in m)) for d, *m in by_date] == [(d, *sums[d]) for d in sorted(sums)]
    totals = ok(simulator, report_body(dimensions=[]))
    assert totals["rowCount"] == 1 and totals["rows"][0]["dimensionValues"] == []
    by_item = ok(simulator, report_body(dimensions=[{"name": "itemId"}], metrics=[{"name": "itemsViewed"}]))
    assert by_item["rowCount"] == len({r[1] for r in detail})


def test_order_bys_sort_by_a_metric_then_by_the_keys(simulator: Simulator):
    body = report_body(orderBys=[{"metric": {"metricName": "itemsViewed"}, "desc": True}], limit=50)
    rows = rows_of(ok(simulator, body))
    assert [int(r[2]) for r in rows] == sorted((int(r[2]) for r in rows), reverse=True)
    ties = [r for r in rows if r[2] == rows[-1][2]]
    assert ties == sorted(ties, key=lambda r: (r[0], r[1]))
    natural = report_body(orderBys=[{"dimension": {"dimensionName": d}} for d in ("date", "itemId")])
    assert rows_of(ok(simulator, natural)) == rows_of(ok(simulator, report_body()))


# ---------------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------------


def test_relative_and_absolute_dates_agree(simulator: Simulator):
    relative = ok(simulator, report_body("2daysAgo", "yesterday"))
    absolute = ok(simulator, report_body(days_ago(2).isoformat(), days_ago(1).isoformat()))
    assert rows_of(relative) == rows_of(absolute)
    one = ok(simulator, report_body("1daysAgo", "1daysAgo"))
    assert {r[0] for r in rows_of(one)} == {days_ago(1).strftime("%Y%m%d")}


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-13-01", "yesterday", "dateRanges[0].startDate"),
        ("yesterday", "26-01-01", "dateRanges[0].endDate"),
        ("lastWeek", "yesterday", "dateRanges[0].startDate"),
        ("", "yesterday", "dateRanges[0].startDate"),
        ("2010-01-01", "yesterday", "dateRanges[0].startDate"),
    ],
)
def test_bad_dates_are_refused_naming_the_field(simulator: Simulator, start: str, end: str, field: str):
    message = google_error(run_report(simulator, report_body(start, end)), 400, "INVALID_ARGUMENT")
    assert field in message


def test_a_range_that_ends_before_it_starts(simulator: Simulator):
    message = google_error(run_report(simulator, report_body("yesterday", "3daysAgo")), 400, "INVALID_ARGUMENT")
    assert "startDate" in message and "after endDate" in message


# ---------------------------------------------------------------------------------------------------
# bad requests, auth, unknown property
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"dimensions": [{"name": "date"}, {"name": "country"}]}, "Field country is not a valid dimension"),
        ({"metrics": [{"name": "sessions"}]}, "Field sessions is not a valid metric"),
        ({"metrics": [{"name": "itemsViewed"}, {"name": "itemsViewed"}]}, "itemsViewed is requested twice"),
        ({"limit": -1}, "limit must be non-negative"),
        ({"offset": "ten"}, "offset must be an integer"),
        ({"keepEmptyRows": True}, 'Unknown name "keepEmptyRows"'),
        ({"dateRanges": []}, "dateRanges is required"),
        (
            {"orderBys": [{"metric": {"metricName": "itemRevenue"}}], "metrics": [{"name": "itemsViewed"}]},
            "orderBys[0]",
        ),
    ],
)
def test_invalid_requests_are_refused_naming_what_is_wrong(simulator: Simulator, change: dict, named: str):
    message = google_error(run_report(simulator, {**report_body(), **change}), 400, "INVALID_ARGUMENT")
    assert named in message


def test_a_body_that_is_not_json(simulator: Simulator):
    response = requests.post(
        f"{simulator.url}/analytics/v1/properties/{PROPERTY}:runReport",
        data=b"{not json",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert "Invalid JSON payload" in google_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("key", [None, "", "an_wrong_key"])
def test_a_missing_or_wrong_key_is_unauthenticated(simulator: Simulator, key: str | None):
    response = run_report(simulator, report_body(), key=key)
    google_error(response, 401, "UNAUTHENTICATED")
    assert "an_wrong_key" not in response.text and KEY not in response.text


def error_reason(response: requests.Response) -> str | None:
    details = response.json()["error"].get("details", [])
    reasons = [d["reason"] for d in details if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
    return reasons[0] if reasons else None


@pytest.mark.parametrize(
    ("key", "reason", "message"),
    [
        (None, "CREDENTIALS_MISSING", "Request is missing required authentication credential."),
        ("an_wrong_key", None, "Request had invalid authentication credentials."),
        (EXPIRED_ACCESS_TOKEN, "ACCESS_TOKEN_EXPIRED", "Request had invalid authentication credentials."),
    ],
)
def test_a_refused_token_says_why_as_google_does(simulator: Simulator, key: str | None, reason, message: str):
    response = run_report(simulator, report_body(), key=key)
    assert google_error(response, 401, "UNAUTHENTICATED").startswith(message)
    assert error_reason(response) == reason
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert (key or KEY) not in response.text


def test_an_expire_token_fault_answers_access_token_expired(simulator: Simulator):
    simulator.admin("POST", "faults", faults=[{"kind": "expire_token", "next": 1, "path_prefix": "/analytics"}])
    response = run_report(simulator, report_body())
    google_error(response, 401, "UNAUTHENTICATED")
    assert error_reason(response) == "ACCESS_TOKEN_EXPIRED" and KEY not in response.text
    assert run_report(simulator, report_body()).status_code == 200


@pytest.mark.parametrize(
    ("variant", "broken"),
    [
        ("missing_id", lambda row: row["dimensionValues"][1] == {}),
        ("wrong_type", lambda row: row["metricValues"][0] == {"value": "not-a-number"}),
    ],
)
def test_a_malformed_fault_breaks_one_row_of_the_page(simulator: Simulator, variant: str, broken):
    clean = ok(simulator, report_body(limit=50))["rows"]
    rule = {"kind": "malformed", "variant": variant, "next": 1, "path_prefix": "/analytics"}
    simulator.admin("POST", "faults", faults=[rule])
    rows = ok(simulator, report_body(limit=50))["rows"]
    changed = [i for i, (a, b) in enumerate(zip(clean, rows, strict=True)) if a != b]
    assert len(changed) == 1 and broken(rows[changed[0]])


def test_auth_is_checked_before_the_request(simulator: Simulator):
    google_error(run_report(simulator, {"bad": 1}, key="nope"), 401, "UNAUTHENTICATED")


def test_an_unknown_property_is_not_found(simulator: Simulator):
    message = google_error(run_report(simulator, report_body(), prop="987654321"), 404, "NOT_FOUND")
    assert "properties/987654321" in message


def test_unknown_paths_and_methods(simulator: Simulator):
    google_error(requests.post(f"{simulator.url}/analytics/v1/properties/{PROPERTY}", timeout=10), 404, "NOT_FOUND")
    response = requests.get(f"{simulator.url}/analytics/v1/properties/{PROPERTY}:runReport", timeout=10)
    google_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "POST"


def test_v1beta_is_served_too(simulator: Simulator):
    response = requests.post(
        f"{simulator.url}/analytics/v1beta/properties/{PROPERTY}:runReport",
        json=report_body(),
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert rows_of(response.json()) == rows_of(ok(simulator, report_body()))


# ---------------------------------------------------------------------------------------------------
# admin: faults, bad rows, expected counts
# ---------------------------------------------------------------------------------------------------


def test_faults_answer_with_google_error_bodies(simulator: Simulator):
    simulator.admin(
        "POST", "faults", faults=[{"status": 503, "next": 1, "retry_after": "2", "path_prefix": "/analytics"}]
    )
    response = run_report(simulator, report_body())
    google_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] == "2"
    assert run_report(simulator, report_body()).status_code == 200


def test_planted_rows_appear_in_yesterdays_report(simulator: Simulator):
    planted = simulator.admin("POST", "inject", kinds=["negative_views", "funnel_inversion", "unknown_item"])
    yesterday = days_ago(1)
    assert {p["date"] for p in planted.values()} == {yesterday.isoformat()}
    rows = {r[1]: r for r in rows_of(ok(simulator, report_body("yesterday", "yesterday")))}
    assert int(rows[planted["negative_views"]["sku"]][2]) < 0
    _, _, _, adds, purchases, _ = rows[planted["funnel_inversion"]["sku"]]
    assert int(purchases) > int(adds)
    assert planted["unknown_item"]["sku"] in rows
    assert simulator.stats()["analytics"]["planted_rows"] == 3
    assert len(rows) == expected_rows(simulator, "yesterday", "yesterday")["rows"]
    simulator.reset()
    assert simulator.stats()["analytics"]["planted_rows"] == 0


def test_the_default_inject_leaves_analytics_alone(simulator: Simulator):
    before = rows_of(ok(simulator, report_body("yesterday", "yesterday")))
    simulator.admin("POST", "inject")
    assert rows_of(ok(simulator, report_body("yesterday", "yesterday"))) == before


def test_expected_counts_refuse_bad_dates(simulator: Simulator):
    response = requests.get(f"{simulator.url}/_admin/analytics/rows", json={"start": "soon", "end": "yesterday"})
    assert response.status_code == 400 and "start" in response.json()["error"]
    counts = expected_rows(simulator, "3daysAgo", "yesterday")
    assert list(counts["by_date"]) == [days_ago(n).isoformat() for n in (3, 2, 1)]
    assert counts["rows"] == sum(counts["by_date"].values())
