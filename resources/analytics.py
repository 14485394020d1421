"""The analytics platform (a GA4-shaped Data API): item reports per day, read a page at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
import orjson
import requests
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
_REPORT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_INTEGER = re.compile(r"-?\d{1,18}", re.ASCII)


def snake_case(name: str) -> str:
    """`itemsAddedToCart` -> `items_added_to_cart`."""
    return _CAMEL.sub("_", name).lower()


#: Google's ErrorInfo reason for a refused token -> what the error says happened
REFUSALS = {
    "ACCESS_TOKEN_EXPIRED": "the API key has expired (ACCESS_TOKEN_EXPIRED): set a new one",
    "CREDENTIALS_MISSING": "no API key was sent (CREDENTIALS_MISSING)",
}


class BearerKey:
    """A fixed API key sent as a Bearer token: nothing to refresh, so a refusal is kept to be reported."""

    def __init__(self, key: str):
        self._key = key
        self.refusal: str | None = None

    def header(self) -> str:
        return f"Bearer {self._key}"

    def invalidate(self, stale: str | None = None) -> bool:
        """A static key cannot be renewed; the caller reports the refusal."""
        return False

    def note_refusal(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """`requests` response hook: remembers Google's reason (ErrorInfo) when a 401 refuses the key."""
        if response.status_code == 401:
            self.refusal = _error_reason(response)


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
    _auth: BearerKey | None = PrivateAttr(default=None)

    def report_pages(self, start_date: date | str, end_date: date | str) -> Iterator[Page]:
        """Every (day, SKU) row between the two dates (inclusive), a page at a time.

        Rows are flat dicts: `date` (YYYY-MM-DD), `item_id`, integer `items_viewed`,
        `items_added_to_cart` and `items_purchased`, `item_revenue` as a decimal string and
        `currency` (the property's ISO currency); a row that cannot be read carries `unreadable`
        (the reason, naming the field) and `row` (as served) instead. Pages follow (date, itemId)
        order so offset paging is stable; a report that ends before its `rowCount` raises rather
        than lose rows.
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
                refusal = self._auth.refusal if exc.status == 401 and self._auth else None
                raise ExternalSystemError(
                    SYSTEM,
                    exc.endpoint,
                    REFUSALS.get(refusal or "", f"the API key was refused ({exc.code or exc.status})"),
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
            self._auth = BearerKey(self.api_key)
            self._api = HttpClient(
                SYSTEM,
                self.api_url,
                setting="ANALYTICS_API_URL",
                auth=self._auth,
                connect_timeout_s=self.connect_timeout_s,
                read_timeout_s=self.read_timeout_s,
                retry=RetryPolicy(self.max_attempts, self.backoff_initial_s, self.backoff_max_s),
            )
            self._api.session.hooks["response"].append(self._auth.note_refusal)
        return self._api


def _error_reason(response: requests.Response) -> str | None:
    """The `reason` of the ErrorInfo detail of a Google error body, if there is one."""
    try:
        details = orjson.loads(response.content)["error"]["details"]
        return next(d["reason"] for d in details if d.get("@type", "").endswith("google.rpc.ErrorInfo"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, StopIteration):
        return None


class UnreadableRow(ValueError):
    """A report row that cannot be read; the message names the field."""


def _flatten(body: dict[str, Any], rows: list[dict[str, Any]]) -> Page:
    """GA4 rows (string values in header order) -> flat dicts with typed, snake_case fields.

    A row that cannot be read comes as `{"unreadable": reason, "row": the row as served, "currency"}`
    plus its `date` and `item_id` when those can be read, for the caller to quarantine.
    """
    dimensions = [h["name"] for h in body["dimensionHeaders"]]
    metrics = [(h["name"], h.get("type")) for h in body["metricHeaders"]]
    currency = (body.get("metadata") or {}).get("currencyCode")
    page: Page = []
    for row in rows:
        try:
            record = _read_row(row, dimensions, metrics)
        except UnreadableRow as exc:
            record = {**_readable_dimensions(row, dimensions), "unreadable": str(exc), "row": row}
        record["currency"] = currency.upper() if currency else None
        page.append(record)
    return page


def _read_row(row: Any, dimensions: list[str], metrics: list[tuple[str, str | None]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, entry in zip(dimensions, _entries(row, "dimensionValues", len(dimensions)), strict=True):
        record[snake_case(name)] = _dimension(name, entry)
    for (name, kind), entry in zip(metrics, _entries(row, "metricValues", len(metrics)), strict=True):
        value = _value(name, entry)
        if kind == "TYPE_INTEGER":
            if not _INTEGER.fullmatch(value):
                raise UnreadableRow(f"{name} {value[:40]!r} is not an integer")
            value = int(value)
        record[snake_case(name)] = value
    return record


def _readable_dimensions(row: Any, dimensions: list[str]) -> dict[str, str]:
    """The dimensions of an unreadable row that can still be read (its day and item, to quarantine it by)."""
    entries = row.get("dimensionValues") if isinstance(row, dict) else None
    if not isinstance(entries, list) or len(entries) != len(dimensions):
        return {}
    out = {}
    for name, entry in zip(dimensions, entries, strict=True):
        try:
            out[snake_case(name)] = _dimension(name, entry)
        except UnreadableRow:
            continue
    return out


def _entries(row: Any, key: str, count: int) -> list[Any]:
    entries = row.get(key) if isinstance(row, dict) else None
    if not isinstance(entries, list) or len(entries) != count:
        found = f"{len(entries)} values" if isinstance(entries, list) else "no list"
        raise UnreadableRow(f"{key} has {found}, the headers name {count}")
    return entries


def _value(name: str, entry: Any) -> str:
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value:
        raise UnreadableRow(f"{name} has no value")
    return value


def _dimension(name: str, entry: Any) -> str:
    """A dimension's value; `date` (YYYYMMDD) as YYYY-MM-DD."""
    value = _value(name, entry)
    if name == "date":
        m = _REPORT_DATE.fullmatch(value)
        if m is None:
            raise UnreadableRow(f"date {value[:40]!r} is not YYYYMMDD")
        value = "-".join(m.groups())
    return value
