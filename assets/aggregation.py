"""Product experience: one row per product with names, prices, stock by region, 30-day funnel and rank.

`serving.v1_product_experience` is rebuilt whole from core on every run (merge `replace`). The
regions, the metrics window and the bestseller basis come from the `aggregation` section of the
rules file (see docs/serving-contracts.md for the meaning of every column).
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import orjson
import pandas as pd
import pydantic
from pydantic import Field

from assets.analytics import PRODUCT_DAILY_METRICS
from assets.commerce import CHANNELS, INVENTORY_ENTRIES, PRICES, PRODUCT_VARIANTS, PRODUCTS
from assets.landing import asset_key, json_text, materialization, read_table
from resources.hub import HUB_POOL, HubResource, TableSpec
from resources.rules import RulesResource

GROUP = "serving"

PRODUCT_EXPERIENCE = TableSpec(
    "serving.v1_product_experience",
    (
        ("product_id", "text"),
        ("product_key", "text"),
        ("name", "json"),
        ("published", "bool"),
        ("variant_count", "int"),
        ("price_ranges", "json"),
        ("in_stock", "bool"),
        ("in_stock_by_region", "json"),
        ("available_quantity", "bigint"),
        ("views_30d", "bigint"),
        ("add_to_carts_30d", "bigint"),
        ("purchases_30d", "bigint"),
        ("conversion_rate", "double"),
        ("bestseller_rank", "bigint"),
        ("metrics_from", "text"),
        ("metrics_to", "text"),
        ("document", "json"),
    ),
    ("product_id",),
    merge="replace",
    description="One row per product for the product-experience front end: names, prices, stock, funnel, rank.",
    column_descriptions={
        "price_ranges": 'Per currency {"EUR": {"min": cents, "max": cents}} over the prices valid now.',
        "in_stock_by_region": "Per configured region: some channel in the region has available_quantity > 0.",
        "conversion_rate": "purchases_30d / views_30d, 0 when there were no views.",
        "bestseller_rank": "Dense rank 1..n by the configured basis; ties broken by views, then product_id.",
    },
)

BASIS_COLUMNS = {"purchases": "purchases_30d", "add_to_carts": "add_to_carts_30d", "views": "views_30d"}


class AggregationRules(pydantic.BaseModel):
    """The `aggregation` section of the rules file."""

    model_config = pydantic.ConfigDict(extra="forbid")

    regions: dict[str, list[str]] = Field(min_length=1, description="region -> ISO country codes of its channels")
    window_days: int = Field(default=30, ge=1, le=366, description="days of metrics, ending at the newest day")
    bestseller_basis: Literal["purchases", "add_to_carts", "views"] = "purchases"

    @pydantic.field_validator("regions")
    @classmethod
    def _one_region_per_country(cls, regions: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for region, countries in regions.items():
            for country in countries:
                if country in seen:
                    raise ValueError(f"country {country} is in both {seen[country]} and {region}")
                seen[country] = region
        return regions

    def region_of(self) -> dict[str, str]:
        return {country.upper(): region for region, countries in self.regions.items() for country in countries}


def metrics_window(newest: str | None, days: int) -> tuple[str | None, str | None]:
    """The first and last metric_date (YYYY-MM-DD) of the window ending at the newest day."""
    if newest is None:
        return None, None
    return (date.fromisoformat(newest) - timedelta(days=days - 1)).isoformat(), newest


def price_ranges(prices: pd.DataFrame, now: datetime) -> dict[str, dict[str, dict[str, int]]]:
    """Per product, per currency, the lowest and highest cent_amount among prices valid at `now`."""
    valid = prices
    if not prices.empty:
        starts = pd.to_datetime(prices["valid_from"], utc=True)
        ends = pd.to_datetime(prices["valid_until"], utc=True)
        valid = prices[(starts.isna() | (starts <= now)) & (ends.isna() | (ends > now))]
    ranges: dict[str, dict[str, dict[str, int]]] = {}
    grouped = valid.groupby(["product_id", "currency"])["cent_amount"].agg(["min", "max"])
    for (product_id, currency), row in grouped.iterrows():
        ranges.setdefault(product_id, {})[currency] = {"min": int(row["min"]), "max": int(row["max"])}
    return ranges


def stock_by_region(stock: pd.DataFrame, rules: AggregationRules) -> dict[str, tuple[bool, dict[str, bool], int]]:
    """Per product: in stock anywhere, in stock per configured region, and the total available quantity."""
    region_of = rules.region_of()
    result: dict[str, tuple[bool, dict[str, bool], int]] = {}
    for product_id, rows in stock.groupby("product_id"):
        available = rows["available_quantity"].fillna(0).astype("int64")
        positive = rows[available > 0]
        regions = {region_of.get(str(c).upper()) for c in positive["country"].dropna()}
        by_region = {region: region in regions for region in rules.regions}
        result[product_id] = (not positive.empty, by_region, int(available.clip(lower=0).sum()))
    return result


def bestseller_ranks(frame: pd.DataFrame, basis: str) -> pd.Series:
    """Dense ranks 1..n: the higher the basis the better; ties go to more views, then the smaller product_id."""
    ordered = frame.sort_values(
        [BASIS_COLUMNS[basis], "views_30d", "product_id"], ascending=[False, False, True], kind="mergesort"
    )
    return pd.Series(range(1, len(ordered) + 1), index=ordered.index, dtype="int64")


def conversion_rate(purchases: int, views: int) -> float:
    """Purchases per view, capped to [0, 1] (a purchase without a tracked view is not a rate above 1)."""
    if views <= 0:
        return 0.0
    return min(max(purchases / views, 0.0), 1.0)


def product_experience_rows(
    products: pd.DataFrame,
    variants: pd.DataFrame,
    prices: pd.DataFrame,
    stock: pd.DataFrame,
    metrics: pd.DataFrame,
    window: tuple[str | None, str | None],
    rules: AggregationRules,
    now: datetime,
) -> dict[str, list]:
    """The serving rows: one per product of `products`, as column lists for PRODUCT_EXPERIENCE."""
    variant_counts = variants.groupby("product_id")["sku"].count().to_dict()
    ranges = price_ranges(prices, now)
    stocked = stock_by_region(stock, rules)
    funnel = metrics.groupby("product_id")[["views", "add_to_carts", "purchases"]].sum()
    frame = products[["product_id", "product_key", "name", "published"]].copy()
    for column in ("views", "add_to_carts", "purchases"):
        totals = funnel[column].reindex(frame["product_id"], fill_value=0).fillna(0)
        frame[f"{column}_30d"] = totals.astype("int64").to_numpy()
    frame["bestseller_rank"] = bestseller_ranks(frame, rules.bestseller_basis)
    no_stock = (False, {region: False for region in rules.regions}, 0)
    columns: dict[str, list] = {name: [] for name in PRODUCT_EXPERIENCE.column_names}
    for row in frame.itertuples(index=False):
        in_stock, by_region, available = stocked.get(row.product_id, no_stock)
        aggregate: dict[str, Any] = {
            "product_id": row.product_id,
            "product_key": row.product_key,
            "name": orjson.loads(row.name) if isinstance(row.name, str) else None,
            "published": None if pd.isna(row.published) else bool(row.published),
            "variant_count": int(variant_counts.get(row.product_id, 0)),
            "price_ranges": ranges.get(row.product_id, {}),
            "in_stock": in_stock,
            "in_stock_by_region": by_region,
            "available_quantity": available,
            "views_30d": int(row.views_30d),
            "add_to_carts_30d": int(row.add_to_carts_30d),
            "purchases_30d": int(row.purchases_30d),
            "conversion_rate": conversion_rate(int(row.purchases_30d), int(row.views_30d)),
            "bestseller_rank": int(row.bestseller_rank),
            "metrics_from": window[0],
            "metrics_to": window[1],
        }
        for name, value in aggregate.items():
            columns[name].append(json_text(value) if name in ("name", "price_ranges", "in_stock_by_region") else value)
        columns["document"].append(json_text(aggregate))
    return columns


@dg.asset(
    key=asset_key(PRODUCT_EXPERIENCE),
    deps=[
        asset_key(s) for s in (PRODUCTS, PRODUCT_VARIANTS, PRICES, INVENTORY_ENTRIES, CHANNELS, PRODUCT_DAILY_METRICS)
    ],
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"python", "pandas"},
    description=PRODUCT_EXPERIENCE.description,
)
def serving_product_experience(
    context: dg.AssetExecutionContext, hub: HubResource, rules: RulesResource
) -> dg.MaterializeResult:
    """Rebuild the product experience read model from core."""
    settings = rules.section("aggregation", AggregationRules)
    for spec in (PRODUCTS, INVENTORY_ENTRIES):
        hub.ensure_table(spec)  # a hub made before soft deletes gains deleted_at
    products = read_table(
        hub, PRODUCTS, "SELECT product_id, product_key, name, published FROM core.products WHERE deleted_at IS NULL"
    )
    variants = read_table(hub, PRODUCT_VARIANTS, "SELECT product_id, sku FROM core.product_variants")
    prices = read_table(
        hub, PRICES, "SELECT product_id, currency, cent_amount, valid_from, valid_until FROM core.prices"
    )
    stock = read_table(
        hub,
        INVENTORY_ENTRIES,
        "SELECT v.product_id, e.available_quantity, c.country FROM core.inventory_entries e"
        " JOIN core.product_variants v ON v.sku = e.sku"
        " LEFT JOIN core.channels c ON c.channel_id = e.supply_channel_id WHERE e.deleted_at IS NULL",
    )
    newest = None
    if hub.backend.table_exists(PRODUCT_DAILY_METRICS.name):
        newest = hub.scalar("SELECT max(metric_date) FROM core.product_daily_metrics")
    window = metrics_window(newest, settings.window_days)
    metrics = pd.DataFrame(columns=["product_id", "views", "add_to_carts", "purchases"])
    if newest is not None:
        metrics = hub.read_frame(
            "SELECT v.product_id, m.items_viewed AS views, m.items_added_to_cart AS add_to_carts,"
            " m.items_purchased AS purchases FROM core.product_daily_metrics m"
            " JOIN core.product_variants v ON v.sku = m.sku WHERE m.metric_date >= ? AND m.metric_date <= ?",
            list(window),
        )
    columns = product_experience_rows(products, variants, prices, stock, metrics, window, settings, datetime.now(UTC))
    with hub.load(PRODUCT_EXPERIENCE.name) as load:
        load.stage(PRODUCT_EXPERIENCE).append(PRODUCT_EXPERIENCE.to_arrow(columns))
    in_stock = sum(columns["in_stock"])
    context.log.info(f"{PRODUCT_EXPERIENCE.name}: {len(columns['product_id'])} products, {in_stock} in stock")
    return materialization(
        hub,
        PRODUCT_EXPERIENCE,
        load,
        metrics_from=window[0] or "",
        metrics_to=window[1] or "",
        products_in_stock=in_stock,
        bestseller_basis=settings.bestseller_basis,
    )


aggregation_assets = [serving_product_experience]
