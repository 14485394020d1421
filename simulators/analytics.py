"""A GA4-shaped report API (Google Analytics Data API ``runReport``), served under ``/analytics``.

``POST /analytics/v1/properties/{propertyId}:runReport`` (``v1beta`` is accepted too) answers item
reports over the commerce catalog's SKUs: dimensions ``date`` and ``itemId``, metrics
``itemsViewed``, ``itemsAddedToCart``, ``itemsPurchased`` and ``itemRevenue`` (USD).

The data is a pure function of ``(seed, date, sku)``: every SKU has a popularity and funnel rates
drawn from ``(seed, sku)``, and each day's numbers from a hash of ``(seed, date, sku)``, so a day
reads the same in any world size and after any reset. Days with no views have no row (sparse).
Data exists from :data:`HISTORY_DAYS` days before the state was built up to yesterday (UTC); a day
appears once it has closed.

Rows are ordered by ``date`` then ``itemId`` unless ``orderBys`` says otherwise; ``limit``/``offset``
page them and ``rowCount`` is the total before paging. Errors use Google's body
``{"error": {"code", "message", "status"}}``; a refused credential adds Google's ``ErrorInfo`` detail
with the reason: ``CREDENTIALS_MISSING`` (no token), ``ACCESS_TOKEN_EXPIRED`` (the known expired
token :data:`EXPIRED_ACCESS_TOKEN`, or an ``expire_token`` fault); a wrong token has no reason.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from hashlib import blake2b
from typing import Any

import orjson

from simulators.world import World

Headers = list[tuple[str, str]]
Reply = tuple[int, bytes, Headers]

HISTORY_DAYS = 400
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 250_000
MAX_OFFSET = 2**63 - 1
EARLIEST_DATE = date(2015, 8, 14)  # GA4 rejects dates before this one
CURRENCY = "USD"
TIME_ZONE = "Etc/UTC"
DIMENSIONS = ("date", "itemId")
#: metric name -> (GA4 metric type, index in a day row)
METRICS = {
    "itemsViewed": ("TYPE_INTEGER", 1),
    "itemsAddedToCart": ("TYPE_INTEGER", 2),
    "itemsPurchased": ("TYPE_INTEGER", 3),
    "itemRevenue": ("TYPE_CURRENCY", 4),
}
#: bad rows ``POST /_admin/inject`` can plant (not part of its default kinds)
INJECT_KINDS = ("negative_views", "funnel_inversion", "unknown_item")
UNKNOWN_SKU = "ZZZ-999999-98"
#: a token the simulator knows as expired (401 UNAUTHENTICATED, reason ACCESS_TOKEN_EXPIRED)
EXPIRED_ACCESS_TOKEN = "an_test_expired_hub"
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
REQUEST_FIELDS = frozenset({"dateRanges", "dimensions", "metrics", "limit", "offset", "orderBys"})
SCHEMA_HINT = (
    "For a list of valid dimensions and metrics, see "
    "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"
)
_PATH_RE = re.compile(r"^/(v1|v1beta)/properties/([^/:]+):runReport$")
_DAYS_AGO_RE = re.compile(r"^(\d{1,5})daysAgo$")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_CACHE = 64
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# a day row: (sku, items viewed, items added to cart, items purchased, item revenue in US cents)
DayRow = tuple[str, int, int, int, int]


def google_error(status: int, message: str, headers: Headers | None = None, reason: str | None = None) -> Reply:
    """Google's JSON error body: ``{"error": {"code", "message", "status"}}``, with an ErrorInfo ``reason`` if given."""
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "analyticsdata.googleapis.com"},
            }
        ]
    return status, orjson.dumps({"error": error}), list(headers or [])


def unauthenticated(reason: str | None, headers: Headers | None = None) -> Reply:
    """401 UNAUTHENTICATED as Google answers it; the body never repeats the token sent."""
    message = MISSING_CREDENTIALS if reason == "CREDENTIALS_MISSING" else INVALID_CREDENTIALS
    challenge = (
        'Bearer realm="analytics"'
        if reason == "CREDENTIALS_MISSING"
        else 'Bearer realm="analytics", error="invalid_token"'
    )
    return google_error(401, message, [*(headers or []), ("WWW-Authenticate", challenge)], reason)


class InvalidArgument(ValueError):
    """A bad request field; the message names it."""


def today_utc() -> date:
    return datetime.now(UTC).date()


def parse_report_date(text: Any, field_name: str, today: date) -> date:
    """``YYYY-MM-DD``, ``today``, ``yesterday`` or ``NdaysAgo`` -> a date."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument(f"{field_name} is required: use YYYY-MM-DD, today, yesterday or NdaysAgo.")
    m = _DAYS_AGO_RE.match(text)
    if text in ("today", "yesterday"):
        day = today - timedelta(days=int(text == "yesterday"))
    elif m:
        day = today - timedelta(days=int(m.group(1)))
    else:
        try:
            if not _ISO_DATE_RE.match(text):
                raise ValueError(text)
            day = date.fromisoformat(text)
        except ValueError:
            message = f"Invalid {field_name} {text!r}: use YYYY-MM-DD, today, yesterday or NdaysAgo."
            raise InvalidArgument(message) from None
    if day < EARLIEST_DATE:
        raise InvalidArgument(f"Invalid {field_name} {text!r}: dates before {EARLIEST_DATE} are not supported.")
    return day


def cents_text(cents: int) -> str:
    """US cents -> a decimal string such as ``59.98`` (GA4 sends currency metrics as strings)."""
    return str(Decimal(cents).scaleb(-2))


def _uniforms(digest: bytes) -> list[float]:
    """16 bytes -> eight uniforms in [0, 1)."""
    return [int.from_bytes(digest[i : i + 2], "big") / 65536.0 for i in range(0, 16, 2)]


@dataclass(frozen=True)
class SkuProfile:
    popularity: float  # mean daily views
    add_rate: float
    buy_rate: float
    price_cents: int  # USD catalog price


@dataclass
class ReportRequest:
    start: date
    end: date
    dimensions: list[str]
    metrics: list[str]
    order_bys: list[tuple[str, str, bool]]  # (kind "dimension"|"metric", name, desc)
    limit: int
    offset: int


class AnalyticsStore:
    """One world's report data: SKU profiles (built on first use), a day cache and planted rows."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.seed = world.seed
        self.first_date = today_utc() - timedelta(days=HISTORY_DAYS)
        self._skus: list[str] | None = None
        self._profiles: list[SkuProfile] = []
        self._days: OrderedDict[date, list[DayRow]] = OrderedDict()
        self._counts: dict[date, int] = {}
        self.planted: dict[date, dict[str, DayRow]] = {}
        self._rng = random.Random(f"{world.seed}/analytics-inject")
        self.reports_served = 0
        self.rows_served = 0

    # -- data ----------------------------------------------------------------------------------
    @property
    def last_date(self) -> date:
        return today_utc() - timedelta(days=1)

    def _ensure_profiles(self) -> None:
        """Sorted SKUs with their profiles; prices come from the catalog (one pass over the products)."""
        if self._skus is not None:
            return
        prices: dict[str, int] = {}
        for product in self.world.iter_products():
            for variant in (product["masterVariant"], *product["variants"]):
                for price in variant["prices"]:
                    if price["value"]["currencyCode"] == CURRENCY:
                        prices[variant["sku"]] = price["value"]["centAmount"]
        skus = sorted(prices)
        profiles = []
        for sku in skus:
            u = _uniforms(blake2b(f"{self.seed}|{sku}".encode(), digest_size=16).digest())
            profiles.append(
                SkuProfile(
                    popularity=math.exp(math.log(0.3) + u[0] * (math.log(60.0) - math.log(0.3))),
                    add_rate=0.04 + 0.26 * u[1],
                    buy_rate=0.15 + 0.45 * u[2],
                    price_cents=prices[sku],
                )
            )
        self._skus, self._profiles = skus, profiles

    def day_rows(self, day: date) -> list[DayRow]:
        """Rows of one day, sorted by SKU ([] outside the data window)."""
        if not self.first_date <= day <= self.last_date:
            return []
        rows = self._days.get(day)
        if rows is not None:
            self._days.move_to_end(day)
            return rows
        rows = self._generate(day)
        self._days[day] = rows
        self._counts[day] = len(rows)
        if len(self._days) > _DAY_CACHE:
            self._days.popitem(last=False)
        return rows

    def day_count(self, day: date) -> int:
        if not self.first_date <= day <= self.last_date:
            return 0
        if day not in self._counts:
            self.day_rows(day)
        return self._counts[day]

    def _generate(self, day: date) -> list[DayRow]:
        self._ensure_profiles()
        weekday = 1.25 if day.weekday() >= 5 else 1.0
        season = 1.0 + 0.25 * math.sin(2 * math.pi * day.timetuple().tm_yday / 365.25)
        factor = weekday * season
        prefix = f"{self.seed}|{day.isoformat()}|".encode()
        rows: list[DayRow] = []
        for sku, p in zip(self._skus or (), self._profiles, strict=True):
            n = int.from_bytes(blake2b(prefix + sku.encode(), digest_size=10).digest(), "big")
            views = int(p.popularity * factor * (0.3 + 1.4 * (n & 0xFFFF) / 65536.0))
            if views <= 0:
                continue
            u = [(n >> shift & 0xFFFF) / 65536.0 for shift in (16, 32, 48, 64)]
            adds = min(views, int(views * p.add_rate * (0.5 + u[0]) + u[1]))
            purchases = min(adds, int(adds * p.buy_rate * (0.5 + u[2]) + u[3]))
            rows.append((sku, views, adds, purchases, purchases * p.price_cents))
        planted = self.planted.get(day)
        if planted:
            merged = {r[0]: r for r in rows}
            merged.update(planted)
            rows = [merged[s] for s in sorted(merged)]
        return rows

    def days(self, start: date, end: date) -> Iterator[date]:
        day = max(start, self.first_date)
        last = min(end, self.last_date)
        while day <= last:
            yield day
            day += timedelta(days=1)

    # -- bad rows ------------------------------------------------------------------------------
    def inject(self, kinds: Sequence[str], seed: int | None = None) -> dict[str, dict]:
        """Plant bad rows on yesterday (UTC), the newest closed day."""
        rng = random.Random(seed) if seed is not None else self._rng
        day = self.last_date
        out: dict[str, dict] = {}
        for kind in kinds:
            rows = [r for r in self.day_rows(day) if r[0] != UNKNOWN_SKU and r[0] not in self.planted.get(day, {})]
            if kind == "unknown_item":
                row: DayRow = (UNKNOWN_SKU, 7, 2, 1, 1999)
            elif not rows:
                raise ValueError(f"no analytics rows on {day} to plant {kind!r} in")
            elif kind == "negative_views":
                sku, views, adds, purchases, revenue = rows[rng.randrange(len(rows))]
                row = (sku, -views, adds, purchases, revenue)
            elif kind == "funnel_inversion":
                sku, views, adds, purchases, revenue = rows[rng.randrange(len(rows))]
                price = self._profiles[bisect_left(self._skus or [], sku)].price_cents
                row = (sku, views + 2, adds, adds + 2, (adds + 2) * price)
            else:
                raise ValueError(f"unknown analytics kind {kind!r}")
            self.planted.setdefault(day, {})[row[0]] = row
            self._days.pop(day, None)
            self._counts.pop(day, None)
            out[kind] = {"date": day.isoformat(), "sku": row[0]}
        return out

    # -- reports -------------------------------------------------------------------------------
    def run_report(self, req: ReportRequest) -> tuple[list[tuple[list[str], list[int]]], int]:
        """(rows of the page as (dimension values, metric values), total rows before paging)."""
        default_order = [("dimension", d, False) for d in ("date", "itemId") if d in req.dimensions]
        dims_are_keys = set(DIMENSIONS) <= set(req.dimensions)
        if dims_are_keys and req.order_bys[: len(default_order)] in ([], default_order):
            return self._paged_by_day(req)
        rows = self._aggregated(req)
        order = [*req.order_bys, *default_order]
        for kind, name, desc in reversed(order):
            index = req.dimensions.index(name) if kind == "dimension" else len(req.dimensions) + req.metrics.index(name)
            rows.sort(key=lambda r, i=index: r[i], reverse=desc)
        page = rows[req.offset : req.offset + req.limit]
        n = len(req.dimensions)
        return [(list(r[:n]), list(r[n:])) for r in page], len(rows)

    def _paged_by_day(self, req: ReportRequest) -> tuple[list[tuple[list[str], list[int]]], int]:
        """The (date, itemId) report in its natural order: whole days are skipped by their counts."""
        days = list(self.days(req.start, req.end))
        total = sum(self.day_count(d) for d in days)
        indexes = [METRICS[m][1] for m in req.metrics]
        out: list[tuple[list[str], list[int]]] = []
        skip, want = req.offset, req.limit
        for day in days:
            if want <= 0:
                break
            count = self.day_count(day)
            if skip >= count:
                skip -= count
                continue
            key = day.strftime("%Y%m%d")
            for row in self.day_rows(day)[skip : skip + want]:
                values = {"date": key, "itemId": row[0]}
                out.append(([values[d] for d in req.dimensions], [row[i] for i in indexes]))
            want -= min(want, count - skip)
            skip = 0
        return out, total

    def _aggregated(self, req: ReportRequest) -> list[tuple]:
        """Every row of the report (metrics summed over what the dimensions leave out)."""
        indexes = [METRICS[m][1] for m in req.metrics]
        sums: dict[tuple, list[int]] = {}
        for day in self.days(req.start, req.end):
            key = day.strftime("%Y%m%d")
            for row in self.day_rows(day):
                values = {"date": key, "itemId": row[0]}
                dims = tuple(values[d] for d in req.dimensions)
                acc = sums.get(dims)
                if acc is None:
                    sums[dims] = [row[i] for i in indexes]
                else:
                    for j, i in enumerate(indexes):
                        acc[j] += row[i]
        return [(*dims, *metrics) for dims, metrics in sums.items()]


@dataclass
class AnalyticsConfig:
    property_id: str = "123456789"
    api_key: str = "an_test_hub"


def _names(body: dict, key: str, allowed: Sequence[str], what: str) -> list[str]:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise InvalidArgument(f"{key} must be a list of objects with a name.")
    names: list[str] = []
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"{key}[{i}].name is required.")
        if name not in allowed:
            raise InvalidArgument(f"Field {name} is not a valid {what}. {SCHEMA_HINT}")
        if name in names:
            raise InvalidArgument(f"{key}[{i}]: the {what} {name} is requested twice.")
        names.append(name)
    return names


def _int64(body: dict, key: str, default: int, hi: int) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{key} must be an integer, got {body.get(key)!r}.")
    if value < 0:
        raise InvalidArgument(f"{key} must be non-negative, got {value}.")
    return min(value, hi)


def parse_request(body: Any, today: date) -> ReportRequest:
    """Validate a runReport body; :class:`InvalidArgument` names the offending field."""
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received. The body must be a JSON object.")
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        raise InvalidArgument(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
    ranges = body.get("dateRanges")
    if not isinstance(ranges, list) or not ranges:
        raise InvalidArgument("dateRanges is required: give one {startDate, endDate}.")
    if len(ranges) > 1:
        raise InvalidArgument("dateRanges: the simulator supports one date range per request.")
    if not isinstance(ranges[0], dict):
        raise InvalidArgument("dateRanges[0] must be an object with startDate and endDate.")
    start = parse_report_date(ranges[0].get("startDate"), "dateRanges[0].startDate", today)
    end = parse_report_date(ranges[0].get("endDate"), "dateRanges[0].endDate", today)
    if start > end:
        raise InvalidArgument(f"dateRanges[0]: startDate {start} is after endDate {end}.")
    dimensions = _names(body, "dimensions", DIMENSIONS, "dimension")
    metrics = _names(body, "metrics", tuple(METRICS), "metric")
    if not dimensions and not metrics:
        raise InvalidArgument("A report needs at least one dimension or metric.")
    limit = _int64(body, "limit", DEFAULT_LIMIT, MAX_LIMIT) or DEFAULT_LIMIT
    offset = _int64(body, "offset", 0, MAX_OFFSET)
    return ReportRequest(start, end, dimensions, metrics, _order_bys(body, dimensions, metrics), limit, offset)


def _order_bys(body: dict, dimensions: list[str], metrics: list[str]) -> list[tuple[str, str, bool]]:
    items = body.get("orderBys", [])
    if not isinstance(items, list):
        raise InvalidArgument("orderBys must be a list.")
    out: list[tuple[str, str, bool]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("desc", False), bool):
            raise InvalidArgument(f"orderBys[{i}] must be an object with dimension or metric and an optional desc.")
        if isinstance(item.get("dimension"), dict):
            name = item["dimension"].get("dimensionName")
            order_type = item["dimension"].get("orderType", "ALPHANUMERIC")
            if order_type not in ("ALPHANUMERIC", "ORDER_TYPE_UNSPECIFIED"):
                raise InvalidArgument(f"orderBys[{i}].dimension.orderType {order_type} is not supported.")
            if name not in dimensions:
                raise InvalidArgument(f"orderBys[{i}].dimension.dimensionName {name!r} is not a requested dimension.")
            out.append(("dimension", name, item.get("desc", False)))
        elif isinstance(item.get("metric"), dict):
            name = item["metric"].get("metricName")
            if name not in metrics:
                raise InvalidArgument(f"orderBys[{i}].metric.metricName {name!r} is not a requested metric.")
            out.append(("metric", name, item.get("desc", False)))
        else:
            raise InvalidArgument(f"orderBys[{i}] needs a dimension or a metric.")
    return out


class AnalyticsSystem:
    """Serves ``/analytics``: ``POST /v1/properties/{propertyId}:runReport`` with a Bearer API key."""

    prefix = "/analytics"
    name = "analytics"

    def __init__(self, world: World, config: AnalyticsConfig | None = None) -> None:
        self.config = config or AnalyticsConfig()
        self.store = AnalyticsStore(world)

    # -- world lifecycle -----------------------------------------------------------------------
    @staticmethod
    def build_state(world: World) -> AnalyticsStore:
        return AnalyticsStore(world)

    def swap_state(self, state: AnalyticsStore) -> AnalyticsStore:
        old, self.store = self.store, state
        return old

    def stats(self) -> dict:
        store = self.store
        return {
            "property_id": self.config.property_id,
            "first_date": store.first_date.isoformat(),
            "last_date": store.last_date.isoformat(),
            "reports_served": store.reports_served,
            "rows_served": store.rows_served,
            "planted_rows": sum(len(rows) for rows in store.planted.values()),
        }

    def fault_reply(self, status: int, headers: Headers) -> Reply:
        if status == 401:  # an `expire_token` fault: the token in use has just expired
            return unauthenticated("ACCESS_TOKEN_EXPIRED", headers)
        return google_error(status, f"The service answered {status} (injected fault). Please retry.", headers)

    def inject(self, kinds: Sequence[str], _ts: int, seed: int | None = None) -> dict[str, dict]:
        return self.store.inject(kinds, seed)

    def row_counts(self, start: Any, end: Any) -> dict:
        """Rows of the (date, itemId) report per day between ``start`` and ``end`` (API date syntax)."""
        today = today_utc()
        first = parse_report_date(start, "start", today)
        last = parse_report_date(end, "end", today)
        if first > last:
            raise InvalidArgument(f"start {first} is after end {last}.")
        by_date = {d.isoformat(): self.store.day_count(d) for d in self.store.days(first, last)}
        return {
            "property_id": self.config.property_id,
            "start": first.isoformat(),
            "end": last.isoformat(),
            "rows": sum(by_date.values()),
            "by_date": by_date,
        }

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, req) -> Reply:
        m = _PATH_RE.match(req.path)
        if m is None:
            return google_error(404, f"The requested URL /analytics{req.path} was not found on this server.")
        if req.method != "POST":
            return google_error(
                405, f"Method {req.method} is not allowed on :runReport; use POST.", [("Allow", "POST")]
            )
        scheme, _, key = (req.headers.get("Authorization") or "").partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
        if not key:
            return unauthenticated("CREDENTIALS_MISSING")
        if secrets.compare_digest(key.encode(), EXPIRED_ACCESS_TOKEN.encode()):
            return unauthenticated("ACCESS_TOKEN_EXPIRED")
        if not secrets.compare_digest(key.encode(), self.config.api_key.encode()):
            return unauthenticated(None)
        property_id = m.group(2)
        if property_id != self.config.property_id:
            return google_error(404, f"Property properties/{property_id} was not found or is not accessible.")
        try:
            body = orjson.loads(req.body) if req.body.strip() else {}
        except orjson.JSONDecodeError:
            return google_error(400, "Invalid JSON payload received.")
        try:
            report = parse_request(body, today_utc())
        except InvalidArgument as exc:
            return google_error(400, str(exc))
        return 200, self._report_body(report), []

    def _report_body(self, report: ReportRequest) -> bytes:
        store = self.store
        rows, total = store.run_report(report)
        revenue = report.metrics.index("itemRevenue") if "itemRevenue" in report.metrics else -1
        out: dict[str, Any] = {
            "dimensionHeaders": [{"name": d} for d in report.dimensions],
            "metricHeaders": [{"name": m, "type": METRICS[m][0]} for m in report.metrics],
        }
        if rows:  # like GA4, an empty report has neither rows nor rowCount
            out["rows"] = [
                {
                    "dimensionValues": [{"value": v} for v in dims],
                    "metricValues": [{"value": cents_text(v) if j == revenue else str(v)} for j, v in enumerate(mets)],
                }
                for dims, mets in rows
            ]
        if total:
            out["rowCount"] = total
        out["metadata"] = {"currencyCode": CURRENCY, "timeZone": TIME_ZONE}
        out["kind"] = "analyticsData#runReport"
        store.reports_served += 1
        store.rows_served += len(rows)
        return orjson.dumps(out)
