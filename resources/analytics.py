"""The analytics platform (a GA4-shaped Data API): item reports per day, read a page at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.http import ExternalSystemError, HttpClient, RetryPolicy

SYSTEM = "analytics"
#: how often an empty page short of the announced rowCount is asked again before the report fails
EMPTY_PAGE_ATTEMPTS = 3
MAX_PAGE_SIZE = 250_000
DIMENSIONS = ("date", "itemId")
METRICS = ("itemsViewed", "itemsAddedToCart", "itemsPurchased", "itemRevenue")

Page = list[dict[str, Any]]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_REPORT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def snake_case(name: str) -> str:
    """`itemsAddedToCart` -> `items_added_to_cart`."""
    return _CAMEL.sub("_", name).lower()


class BearerKey:
    """A fixed API key sent as a Bearer token; nothing to refresh when it is refused."""

    def __init__(self, key: str):
        self._key = key

    def header(self) -> str:
        return f"Bearer {self._key}"

    def invalidate(self) -> None:
        """A static key cannot be renewed; the caller reports the refusal."""


class AnalyticsResource(dg.ConfigurableResource):
    """Reads item reports (views, add-to-carts, purchases, revenue per SKU and day) from the analytics API."""

    api_url: str = Field(description="API base URL including the version, e.g. .../analytics/v1 (ANALYTICS_API_URL).")
    property_id: str = Field(description="The analytics property to report on (ANALYTICS_PROPERTY_ID).")
    api_key: str = Field(description="Bearer API key (ANALYTICS_API_KEY, secret).")
    page_size: int = Field(default=10_000, ge=1, le=MAX_PAGE_SIZE, description="Rows per report page (limit).")
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    _api: HttpClient | None = PrivateAttr(default=None)

    def report_pages(self, start_date: date | str, end_date: date | str) -> Iterator[Page]:
        """Every (day, SKU) row between the two dates (inclusive), a page at a time.

        Rows are flat dicts: `date` (YYYY-MM-DD), `item_id`, integer `items_viewed`,
        `items_added_to_cart` and `items_purchased`, `item_revenue` as a decimal string and
        `currency` (the property's ISO currency). Pages follow (date, itemId) order so offset
        paging is stable; a report that ends before its `rowCount` raises rather than lose rows.
        """
        offset, empty = 0, 0
        while True:
            body = self._run_report(str(start_date), str(end_date), offset)
            total = int(body.get("rowCount", 0))
            rows = body.get("rows") or []
            if rows:
                try:
                    page = _flatten(body, rows)
                except (KeyError, TypeError, ValueError) as exc:
                    detail = f"unreadable report rows from offset {offset}: {type(exc).__name__}: {exc}"
                    raise ExternalSystemError(SYSTEM, self._endpoint, detail, status=200) from None
                yield page
            offset += len(rows)
            if offset >= total:
                return
            empty = 0 if rows else empty + 1  # an empty page short of rowCount is asked again, a few times
            if empty == EMPTY_PAGE_ATTEMPTS:
                detail = f"the report ended at row {offset} of the {total} it announced"
                raise ExternalSystemError(SYSTEM, self._endpoint, detail, status=200, attempts=empty)

    @property
    def _endpoint(self) -> str:
        return f"POST /properties/{self.property_id}:runReport"

    def _run_report(self, start_date: str, end_date: str, offset: int) -> dict[str, Any]:
        request = {
            "dateRanges": [{"startDate": start_date, "endDate": end_date}],
            "dimensions": [{"name": d} for d in DIMENSIONS],
            "metrics": [{"name": m} for m in METRICS],
            "orderBys": [{"dimension": {"dimensionName": d}} for d in DIMENSIONS],
            "limit": self.page_size,
            "offset": offset,
        }
        try:
            return self._client().request_json("POST", f"/properties/{self.property_id}:runReport", json=request)
        except ExternalSystemError as exc:
            if exc.status in (401, 403):
                raise ExternalSystemError(
                    SYSTEM,
                    exc.endpoint,
                    "the API key was refused (UNAUTHENTICATED or PERMISSION_DENIED)",
                    status=exc.status,
                    attempts=exc.attempts,
                    setting="ANALYTICS_API_KEY",
                ) from None
            if exc.status == 404:
                raise ExternalSystemError(
                    SYSTEM,
                    exc.endpoint,
                    f"property {self.property_id!r} not found",
                    status=404,
                    attempts=exc.attempts,
                    setting="ANALYTICS_PROPERTY_ID",
                ) from None
            raise

    def _client(self) -> HttpClient:
        if self._api is None:
            self._api = HttpClient(
                SYSTEM,
                self.api_url,
                setting="ANALYTICS_API_URL",
                auth=BearerKey(self.api_key),
                connect_timeout_s=self.connect_timeout_s,
                read_timeout_s=self.read_timeout_s,
                retry=RetryPolicy(self.max_attempts, self.backoff_initial_s, self.backoff_max_s),
            )
        return self._api


def _flatten(body: dict[str, Any], rows: list[dict[str, Any]]) -> Page:
    """GA4 rows (string values in header order) -> flat dicts with typed, snake_case fields."""
    dimensions = [snake_case(h["name"]) for h in body["dimensionHeaders"]]
    metrics = [(snake_case(h["name"]), h.get("type")) for h in body["metricHeaders"]]
    currency = (body.get("metadata") or {}).get("currencyCode")
    page: Page = []
    for row in rows:
        record: dict[str, Any] = {}
        for name, value in zip(dimensions, row["dimensionValues"], strict=True):
            record[name] = value["value"]
        for (name, kind), value in zip(metrics, row["metricValues"], strict=True):
            record[name] = int(value["value"]) if kind == "TYPE_INTEGER" else value["value"]
        m = _REPORT_DATE.match(record.get("date", ""))
        if m:
            record["date"] = "-".join(m.groups())
        record["currency"] = currency.upper() if currency else None
        page.append(record)
    return page
