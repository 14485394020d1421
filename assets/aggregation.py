"""Product experience: one row per product with names, prices, stock by region, 30-day funnel and rank.

`serving.v1_product_experience` is rebuilt whole from core (merge `replace`), or, in `changes` mode
(the change-data-capture job), only for the products whose core rows changed since it last ran; the
bestseller ranks are then recomputed over every product and the rows whose rank moved are rewritten.
The regions, the metrics window and the bestseller basis come from the `aggregation` section of the
rules file (see docs/serving-contracts.md for the meaning of every column).
"""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import orjson
import pandas as pd
import pyarrow as pa
import pydantic
from pydantic import Field

from assets.analytics import PRODUCT_DAILY_METRICS
from assets.commerce import CHANNELS, INVENTORY_ENTRIES, PRICES, PRODUCT_VARIANTS, PRODUCTS
from assets.inventory import (
    Basis,
    ServingConfig,
    by_key,
    changed_keys,
    fingerprint,
    new_generation,
    rebuild_reason,
    rebuilt_scope,
    rows_of,
    scope_metadata,
    watermarks,
)
from assets.landing import asset_key, json_text, materialization, read_table
from resources.hub import HUB_POOL, HubResource, TableSpec, held_open
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


def funnel_totals(products: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """`products` (id, key, name, published) with their views, add-to-carts and purchases in the window."""
    funnel = metrics.groupby("product_id")[["views", "add_to_carts", "purchases"]].sum()
    frame = products[["product_id", "product_key", "name", "published"]].copy()
    for column in ("views", "add_to_carts", "purchases"):
        totals = funnel[column].reindex(frame["product_id"], fill_value=0).fillna(0)
        frame[f"{column}_30d"] = totals.astype("int64").to_numpy()
    return frame


def product_experience_rows(
    products: pd.DataFrame,
    variants: pd.DataFrame,
    prices: pd.DataFrame,
    stock: pd.DataFrame,
    metrics: pd.DataFrame,
    window: tuple[str | None, str | None],
    rules: AggregationRules,
    now: datetime,
    ranks: dict[str, int] | None = None,
) -> dict[str, list]:
    """The serving rows: one per product of `products`, as column lists for PRODUCT_EXPERIENCE.

    The bestseller ranks are taken among `products`, or from `ranks` (product id -> rank) when given.
    """
    variant_counts = variants.groupby("product_id")["sku"].count().to_dict()
    ranges = price_ranges(prices, now)
    stocked = stock_by_region(stock, rules)
    frame = funnel_totals(products, metrics)
    if ranks is None:
        frame["bestseller_rank"] = bestseller_ranks(frame, rules.bestseller_basis)
    else:
        frame["bestseller_rank"] = frame["product_id"].map(ranks)
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


# Products whose serving row may have changed: core rows loaded after the basis, by product.
PRODUCT_CHANGES = (
    (PRODUCTS, "SELECT product_id FROM core.products WHERE _batch_id > ?"),
    (PRODUCT_VARIANTS, "SELECT DISTINCT product_id FROM core.product_variants WHERE _batch_id > ?"),
    (PRICES, "SELECT DISTINCT product_id FROM core.prices WHERE _batch_id > ?"),
    (
        INVENTORY_ENTRIES,
        "SELECT DISTINCT v.product_id FROM core.inventory_entries e"
        " JOIN core.product_variants v ON v.sku = e.sku WHERE e._batch_id > ?",
    ),
)
# Inputs every row reads: a change there rebuilds the whole model.
WHOLE_INPUTS = (CHANNELS, PRODUCT_DAILY_METRICS)

PRODUCTS_SQL = "SELECT product_id, product_key, name, published FROM core.products WHERE deleted_at IS NULL"
VARIANTS_SQL = "SELECT product_id, sku FROM core.product_variants"
PRICES_SQL = "SELECT product_id, currency, cent_amount, valid_from, valid_until FROM core.prices"
STOCK_SQL = (
    "SELECT v.product_id, e.available_quantity, c.country FROM core.inventory_entries e"
    " JOIN core.product_variants v ON v.sku = e.sku"
    " LEFT JOIN core.channels c ON c.channel_id = e.supply_channel_id WHERE e.deleted_at IS NULL"
)
METRICS_SQL = (
    "SELECT v.product_id, m.items_viewed AS views, m.items_added_to_cart AS add_to_carts,"
    " m.items_purchased AS purchases FROM core.product_daily_metrics m"
    " JOIN core.product_variants v ON v.sku = m.sku WHERE m.metric_date >= ? AND m.metric_date <= ?"
)
RANKED_SQL = f"SELECT product_id, {', '.join(BASIS_COLUMNS.values())}, bestseller_rank FROM {PRODUCT_EXPERIENCE.name}"


def _inputs(
    hub: HubResource, window: tuple[str | None, str | None], products: set[str] | None
) -> tuple[pd.DataFrame, ...]:
    """Products, variants, prices, stock and metrics of every product, or of the given ones."""
    no_metrics = pd.DataFrame(columns=["product_id", "views", "add_to_carts", "purchases"])
    if products is None:
        frames = [
            read_table(hub, spec, sql)
            for spec, sql in (
                (PRODUCTS, PRODUCTS_SQL),
                (PRODUCT_VARIANTS, VARIANTS_SQL),
                (PRICES, PRICES_SQL),
                (INVENTORY_ENTRIES, STOCK_SQL),
            )
        ]
        metrics = hub.read_frame(METRICS_SQL, list(window)) if window[1] is not None else no_metrics
        return (*frames, metrics)
    hub.ensure_table(CHANNELS)  # joined to the stock
    frames = [
        rows_of(hub, sql + f" {'AND' if 'WHERE' in sql else 'WHERE'} {column} IN ({{keys}})", products)
        for sql, column in (
            (PRODUCTS_SQL, "product_id"),
            (VARIANTS_SQL, "product_id"),
            (PRICES_SQL, "product_id"),
            (STOCK_SQL, "v.product_id"),
        )
    ]
    metrics = no_metrics
    if window[1] is not None:
        metrics = rows_of(hub, METRICS_SQL + " AND v.product_id IN ({keys})", products, list(window))
    return (*frames, metrics)


def global_ranks(
    hub: HubResource, changed: set[str], fresh: pd.DataFrame, basis: str
) -> tuple[dict[str, int], dict[str, int]]:
    """Bestseller ranks over every product: the stored funnel of the unchanged ones and the fresh funnel
    of the changed ones (`fresh`, without deleted products). Returns (rank per product, new rank per
    unchanged product whose rank moved).

    When the changed products are the same live products with the same funnel as stored (names,
    prices or stock changed), no rank can move: their stored ranks are kept without reading the rest.
    """
    columns = ["product_id", *BASIS_COLUMNS.values()]
    before = rows_of(hub, RANKED_SQL + " WHERE product_id IN ({keys})", changed)
    same = fresh[columns].merge(before, on=columns, how="inner")
    if len(same) == len(fresh) == len(before):
        return dict(zip(same["product_id"], same["bestseller_rank"].astype(int), strict=True)), {}
    stored = hub.read_frame(RANKED_SQL)
    kept = stored.loc[~stored["product_id"].isin(changed)]
    ranking = pd.concat([kept[columns], fresh[columns]], ignore_index=True)
    ordered = bestseller_ranks(ranking, basis)
    ranks = dict(zip(ranking.loc[ordered.index, "product_id"], ordered.astype(int), strict=True))
    stored_ranks = zip(kept["product_id"], kept["bestseller_rank"], strict=True)
    moved = {pid: ranks[pid] for pid, rank in stored_ranks if ranks[pid] != rank}
    return ranks, moved


def _reranked(hub: HubResource, moved: dict[str, int]) -> pa.Table | None:
    """The stored rows of `moved` products with their new bestseller rank (in the column and the document)."""
    if not moved:
        return None
    keys = sorted(moved)
    tables = []
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        sql = (
            f"SELECT {', '.join(PRODUCT_EXPERIENCE.column_names)} FROM {PRODUCT_EXPERIENCE.name}"
            f" WHERE product_id IN ({', '.join('?' * len(chunk))})"
        )
        tables.append(pa.Table.from_batches(list(hub.read_batches(sql, chunk))))
    table = pa.concat_tables(tables)
    ids = table.column("product_id").to_pylist()
    documents = []
    for product_id, document in zip(ids, table.column("document").to_pylist(), strict=True):
        value = orjson.loads(document)
        value["bestseller_rank"] = moved[product_id]
        documents.append(json_text(value))
    table = table.set_column(
        table.schema.get_field_index("bestseller_rank"),
        "bestseller_rank",
        pa.array([moved[pid] for pid in ids], pa.int64()),
    )
    return table.set_column(table.schema.get_field_index("document"), "document", pa.array(documents, pa.string()))


@dg.asset(
    key=asset_key(PRODUCT_EXPERIENCE),
    deps=[asset_key(s) for s in (PRODUCTS, PRODUCT_VARIANTS, PRICES, INVENTORY_ENTRIES, *WHOLE_INPUTS)],
    group_name=GROUP,
    pool=HUB_POOL,
    kinds={"python", "pandas"},
    description=PRODUCT_EXPERIENCE.description,
)
def serving_product_experience(
    context: dg.AssetExecutionContext, config: ServingConfig, hub: HubResource, rules: RulesResource
) -> dg.MaterializeResult:
    """Rebuild the product experience read model from core: whole, or in `changes` mode the rows of the
    products whose core rows changed since it last ran (plus the rows whose bestseller rank moved)."""
    with held_open(hub):
        settings = rules.section("aggregation", AggregationRules)
        for spec in (PRODUCTS, INVENTORY_ENTRIES):
            hub.ensure_table(spec)  # a hub made before soft deletes gains deleted_at
        inputs = (PRODUCTS, PRODUCT_VARIANTS, PRICES, INVENTORY_ENTRIES, *WHOLE_INPUTS)
        basis = Basis(watermarks(hub, inputs), fingerprint(settings), new_generation())
        previous = Basis.of(hub, PRODUCT_EXPERIENCE.name)
        changed, reason = None, "mode rebuild"
        if config.mode == "changes":
            reason = rebuild_reason(previous, basis, [spec.name for spec in WHOLE_INPUTS])
            if reason is None:
                changed = changed_keys(hub, PRODUCT_CHANGES, previous)
                basis = dataclasses.replace(basis, generation=previous.generation)
        newest = None
        if hub.backend.table_exists(PRODUCT_DAILY_METRICS.name):
            newest = hub.scalar("SELECT max(metric_date) FROM core.product_daily_metrics")
        window = metrics_window(newest, settings.window_days)
        products, variants, prices, stock, metrics = _inputs(hub, window, changed)
        ranks, moved = None, {}
        if changed is not None:
            ranks, moved = global_ranks(hub, changed, funnel_totals(products, metrics), settings.bestseller_basis)
        columns = product_experience_rows(
            products, variants, prices, stock, metrics, window, settings, datetime.now(UTC), ranks
        )
        with hub.load(PRODUCT_EXPERIENCE.name) as load:
            if changed is None:
                load.stage(PRODUCT_EXPERIENCE).append(PRODUCT_EXPERIENCE.to_arrow(columns))
            else:
                stage = load.stage(by_key(PRODUCT_EXPERIENCE, "product_id"))
                stage.replace_parents(pa.array(sorted(changed), pa.string()))
                stage.append(PRODUCT_EXPERIENCE.to_arrow(columns))
                if (reranked := _reranked(hub, moved)) is not None:
                    stage.append(reranked)
            load.advance(cursor=basis.encode())
        in_stock = sum(columns["in_stock"])
        scope = rebuilt_scope(changed, reason)
        count = len(columns["product_id"])
        context.log.info(f"{PRODUCT_EXPERIENCE.name}: {count} products, {in_stock} in stock ({scope})")
        return materialization(
            hub,
            PRODUCT_EXPERIENCE,
            load,
            **scope_metadata(changed, reason),
            ranks_moved=len(moved),
            metrics_from=window[0] or "",
            metrics_to=window[1] or "",
            products_in_stock=in_stock,
            bestseller_basis=settings.bestseller_basis,
        )


aggregation_assets = [serving_product_experience]
