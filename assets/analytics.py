"""Analytics platform: daily item reports into `raw` and `core.product_daily_metrics`, one partition per day.

A day is a partition of `DailyPartitionsDefinition` (UTC) starting at ANALYTICS_START_DATE
(default 2026-01-01); the newest partition is yesterday, because a day is final only once it has
closed. A run lands exactly its days (one day, or a range under the single-run backfill policy):

* every report row goes to `raw.analytics_report_rows` (id `{date}:{sku}`), merged by its document;
* `core.product_daily_metrics` has each day replaced whole when its rows differ from the hub's, so
  rows that vanished at the source vanish here too, and re-running an unchanged day changes nothing;
* a row that cannot land (a missing SKU, a metric that is no number, a revenue that is no amount)
  goes to `quality.quarantine` instead, with the day as its batch and the reason, in the same load
  as the day's good rows: report rows = rows loaded + rows quarantined.

`metric_date` is the report day as ISO text (`YYYY-MM-DD`): a calendar day, not an instant.
"""

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, NamedTuple

import dagster as dg
import orjson
import pyarrow as pa

from assets.landing import asset_key, materialization, raw_table
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from resources.analytics import AnalyticsResource
from resources.hub import HUB_POOL, HubResource, Load, TableSpec, quoted

GROUP = "analytics"
START_DATE_SETTING = "ANALYTICS_START_DATE"
DEFAULT_START_DATE = "2026-01-01"
SYNC_KEY = "analytics:product_daily_metrics"
SOURCE = "analytics/runReport"
#: minor-unit exponents of the currencies the business reports revenue in (ISO 4217)
MINOR_UNITS = {"USD": 2, "EUR": 2, "GBP": 2}

RAW_REPORT_ROWS = raw_table(
    "analytics_report_rows", "Item report rows (one per day and SKU), as extracted.", versioned=False
)
PRODUCT_DAILY_METRICS = TableSpec(
    "core.product_daily_metrics",
    (
        ("metric_date", "text"),
        ("sku", "text"),
        ("items_viewed", "bigint"),
        ("items_added_to_cart", "bigint"),
        ("items_purchased", "bigint"),
        ("item_revenue_minor", "bigint"),
        ("currency", "text"),
    ),
    ("metric_date", "sku"),
    merge="replace_children",
    parent_key="metric_date",
    description="Views, add-to-carts, purchases and revenue per SKU and day (days with no views have no row).",
    column_descriptions={
        "metric_date": "The report day (UTC) as YYYY-MM-DD.",
        "item_revenue_minor": "Item revenue in minor units of `currency`.",
    },
)
ANALYTICS_CORE_TABLES = (PRODUCT_DAILY_METRICS,)


class AnalyticsDateError(ValueError):
    """A report day outside the partitions; the message names the day and the valid range."""


class UnknownCurrencyError(ValueError):
    """The property reports revenue in a currency without a known minor unit: no row of it can land."""


class LandedReport(NamedTuple):
    load: Load
    days_replaced: list[str]
    quarantined: list[Quarantined]


def start_date_setting() -> str:
    """ANALYTICS_START_DATE, checked to be a YYYY-MM-DD date; the default when unset."""
    value = os.environ.get(START_DATE_SETTING, DEFAULT_START_DATE)
    try:
        return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise ValueError(f"{START_DATE_SETTING} must be a date written YYYY-MM-DD, got {value!r}") from None


def daily_partitions(start_date: str) -> dg.DailyPartitionsDefinition:
    """One partition per UTC day from `start_date`; a day becomes available once it has closed."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC", end_offset=0)


def report_days(partitions: dg.DailyPartitionsDefinition, start: str, end: str) -> list[str]:
    """The partition keys from `start` to `end` (inclusive), refusing any day outside the partitions."""
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    valid = f"the valid range is {first} to {last}" if first and last else "no day has closed yet"
    keys = []
    for name, value in (("start", start), ("end", end)):
        try:
            key = date.fromisoformat(value).isoformat()
        except ValueError:
            raise AnalyticsDateError(f"analytics {name} date {value!r} is not a YYYY-MM-DD date; {valid}") from None
        if first is None or last is None or not first <= key <= last:
            raise AnalyticsDateError(
                f"analytics date {key} is outside the partition range: {valid} "
                f"({START_DATE_SETTING} sets the first day; the last is yesterday, UTC)"
            )
        keys.append(key)
    if keys[0] > keys[1]:
        raise AnalyticsDateError(f"analytics start date {keys[0]} is after the end date {keys[1]}")
    return partitions.get_partition_keys_in_range(dg.PartitionKeyRange(keys[0], keys[1]))


def to_minor_units(amount: str, currency: str) -> int:
    """A decimal amount string in `currency` -> integer minor units (rounded half to even)."""
    exponent = MINOR_UNITS.get(currency)
    if exponent is None:
        raise UnknownCurrencyError(
            f"revenue currency {currency!r} has no known minor unit (known: {', '.join(MINOR_UNITS)})"
        )
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError):
        raise ValueError(f"revenue {amount!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ValueError(f"revenue {amount!r} is not a decimal amount")
    return int(value.scaleb(exponent).to_integral_value(rounding=ROUND_HALF_EVEN))


def flatten_report_rows(
    rows: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, list], list[Quarantined]]:
    """Report rows from `AnalyticsResource.report_pages` -> (the rows that land, their
    `core.product_daily_metrics` columns, the others for quarantine with the reason naming the field).

    A currency without a known minor unit fails instead: it is the property's, so no row could land.
    """
    columns: dict[str, list] = {name: [] for name in PRODUCT_DAILY_METRICS.column_names}
    good: list[dict[str, Any]] = []
    bad: list[Quarantined] = []
    for row in rows:
        try:
            values = _conformed(row)
        except UnknownCurrencyError:
            raise
        except ValueError as exc:
            record = row.get("row", row)
            key = f"{row['date']}:{row['item_id']}" if row.get("date") and row.get("item_id") else None
            key = key or hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()
            bad.append(Quarantined(None, f"cannot land in {PRODUCT_DAILY_METRICS.name}: {exc}", record, key=key))
            continue
        good.append(row)
        for name, value in values:
            columns[name].append(value)
    return good, columns, bad


def _conformed(row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """One row's (column, value) pairs; raises ValueError naming the field that cannot land."""
    if "unreadable" in row:
        raise ValueError(row["unreadable"])
    for field in ("date", "item_id", "item_revenue"):
        if not isinstance(row.get(field), str) or not row[field]:
            raise ValueError(f"{field} is missing")
    for field in ("items_viewed", "items_added_to_cart", "items_purchased"):
        if isinstance(row.get(field), bool) or not isinstance(row.get(field), int):
            raise ValueError(f"{field} {row.get(field)!r} is not an integer")
    return (
        ("metric_date", row["date"]),
        ("sku", row["item_id"]),
        ("items_viewed", row["items_viewed"]),
        ("items_added_to_cart", row["items_added_to_cart"]),
        ("items_purchased", row["items_purchased"]),
        ("item_revenue_minor", to_minor_units(row["item_revenue"], row["currency"])),
        ("currency", row["currency"]),
    )


def _raw_rows(rows: Sequence[dict[str, Any]]) -> pa.Table:
    n, extracted_at = len(rows), datetime.now(UTC)
    return RAW_REPORT_ROWS.to_arrow(
        {
            "id": [f"{r['date']}:{r['item_id']}" for r in rows],
            "version": [None] * n,
            "last_modified_at": [None] * n,
            "document": [orjson.dumps(r).decode() for r in rows],
            "_extracted_at": [extracted_at] * n,
            "_source": [SOURCE] * n,
        }
    )


def _by_day(
    pages: Iterable[Sequence[dict[str, Any]]], days: Sequence[str], undated: list[dict]
) -> Iterator[tuple[str, list[dict]]]:
    """Regroup pages into whole days; refuses rows for other days or out of date order.

    Unreadable rows whose day cannot be read go to `undated`.
    """
    wanted, done = set(days), set()
    day: str | None = None
    rows: list[dict] = []
    for page in pages:
        for row in page:
            if "unreadable" in row and not row.get("date"):
                undated.append(row)
                continue
            if row.get("date") != day:
                if day is not None:
                    yield day, rows
                    done.add(day)
                day, rows = row.get("date"), []
                if day not in wanted:
                    raise ValueError(f"the analytics report for {days[0]}..{days[-1]} returned a row for {day!r}")
                if day in done:
                    raise ValueError(f"the analytics report is not in date order: {day} came back after other days")
            rows.append(row)
    if day is not None:
        yield day, rows


def _same_as_hub(hub: HubResource, day: str, table: pa.Table) -> bool:
    columns = PRODUCT_DAILY_METRICS.column_names
    current = hub.read_frame(
        f"SELECT {', '.join(columns)} FROM {quoted(PRODUCT_DAILY_METRICS.name)} WHERE metric_date = ? ORDER BY sku",
        [day],
    )
    return current.to_dict("records") == table.sort_by("sku").to_pylist()


def land_report(hub: HubResource, pages: Iterable[Sequence[dict[str, Any]]], days: Sequence[str]) -> LandedReport:
    """Land a report for `days` in one atomic load: good rows in raw and core, the others in quarantine."""
    quarantined: list[Quarantined] = []
    with hub.load(SYNC_KEY) as load:
        raw = load.stage(RAW_REPORT_ROWS)
        core = load.stage(PRODUCT_DAILY_METRICS)
        seen: set[str] = set()
        replaced: list[str] = []
        undated: list[dict] = []
        for day, rows in _by_day(pages, days, undated):
            seen.add(day)
            good, columns, bad = flatten_report_rows(rows)
            raw.append(_raw_rows(good))
            if bad:
                load.stage(QUARANTINE).append(quarantine_rows(PRODUCT_DAILY_METRICS.name, SOURCE, day, bad))
                quarantined += bad
            table = PRODUCT_DAILY_METRICS.to_arrow(columns)
            if not _same_as_hub(hub, day, table):
                core.append(table)
                core.replace_parents(pa.array([day], pa.string()))
                replaced.append(day)
        if undated:  # their day is unknown: the report's range is their batch
            _, _, bad = flatten_report_rows(undated)
            batch = f"{days[0]}..{days[-1]}"
            load.stage(QUARANTINE).append(quarantine_rows(PRODUCT_DAILY_METRICS.name, SOURCE, batch, bad))
            quarantined += bad
        empty = [d for d in days if d not in seen]  # no rows at the source: none in the hub either
        if empty:
            core.replace_parents(pa.array(empty, pa.string()))
    return LandedReport(load, replaced, quarantined)


def build_analytics_assets(start_date: str = DEFAULT_START_DATE) -> list[dg.AssetsDefinition]:
    """The analytics group, partitioned by day from `start_date`."""
    partitions = daily_partitions(start_date)
    specs = [
        dg.AssetSpec(
            asset_key(RAW_REPORT_ROWS), group_name=GROUP, description=RAW_REPORT_ROWS.description, kinds={"ga4"}
        ),
        dg.AssetSpec(
            asset_key(PRODUCT_DAILY_METRICS),
            deps=[asset_key(RAW_REPORT_ROWS)],
            group_name=GROUP,
            description=PRODUCT_DAILY_METRICS.description,
            kinds={"python"},
        ),
    ]

    @dg.multi_asset(
        name="analytics_daily_reports",
        specs=specs,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=HUB_POOL,
    )
    def analytics_daily_reports(context: dg.AssetExecutionContext, analytics: AnalyticsResource, hub: HubResource):
        days = context.partition_keys
        context.log.info(f"analytics report for {days[0]} to {days[-1]} ({len(days)} day(s))")
        load, days_replaced, quarantined = land_report(hub, analytics.report_pages(days[0], days[-1]), days)
        loaded_rows = load.results[RAW_REPORT_ROWS.name].rows_staged
        if quarantined:
            context.log.warning(f"{len(quarantined)} analytics report row(s) quarantined: {quarantined[0].reason}")
        yield materialization(hub, RAW_REPORT_ROWS, load, first_day=days[0], last_day=days[-1])
        yield materialization(
            hub,
            PRODUCT_DAILY_METRICS,
            load,
            report_rows=loaded_rows + len(quarantined),
            loaded_rows=loaded_rows,
            quarantined_rows=len(quarantined),
            days_replaced=len(days_replaced),
        )

    return [analytics_daily_reports]


analytics_assets = build_analytics_assets(start_date_setting())
