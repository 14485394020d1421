"""How any source lands: pages into `raw` (one atomic load), then `raw` into `core` (only what changed).

Source modules (`assets/commerce.py`, ...) say what their data is; these helpers do the moving, the
sync-state bookkeeping and the materialization metadata, the same way for every system.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import dagster as dg
import orjson
import pandas as pd
import pyarrow as pa

from resources.hub import HUB_POOL, HubResource, Load, TableSpec, quoted

Flatten = Callable[[list[dict[str, Any]]], dict[str, dict[str, list]]]
"""Source documents into `{table name: {column: values}}`."""

RAW_COLUMNS = (
    ("id", "text"),
    ("version", "bigint"),
    ("last_modified_at", "timestamp"),
    ("document", "json"),
    ("_extracted_at", "timestamp"),
    ("_source", "text"),
)
PROGRESS_EVERY_PAGES = 50


@dataclass(frozen=True)
class RecordShape:
    """Where a source keeps a record's id, version and modification time.

    Sources without versions (Stripe objects, report rows) set `version` to None: their raw rows
    then change when the document does.
    """

    id: Callable[[dict[str, Any]], str] = itemgetter("id")
    version: Callable[[dict[str, Any]], int | None] | None = itemgetter("version")
    modified_at: Callable[[dict[str, Any]], str | datetime | None] = lambda record: record.get("lastModifiedAt")


COMMERCETOOLS = RecordShape()


def raw_table(table: str, description: str, *, versioned: bool = True) -> TableSpec:
    """A raw landing table: the source document whole, keyed by source id, newest version kept."""
    if versioned:
        return TableSpec(f"raw.{table}", RAW_COLUMNS, ("id",), version_column="version", description=description)
    return TableSpec(f"raw.{table}", RAW_COLUMNS, ("id",), change_columns=("document",), description=description)


def asset_key(spec: TableSpec) -> dg.AssetKey:
    """A hub table's asset key: `core.products` is core/products."""
    return dg.AssetKey(spec.name.split("."))


def empty_columns(spec: TableSpec) -> dict[str, list]:
    """Column lists to fill, one per declared column, for `TableSpec.to_arrow`."""
    return {name: [] for name in spec.column_names}


def read_table(hub: HubResource, spec: TableSpec, sql: str, params: list | None = None) -> pd.DataFrame:
    """`sql` over `spec`'s table, or an empty frame when that table was never loaded."""
    if not hub.backend.table_exists(spec.name):
        return pd.DataFrame(columns=spec.column_names)
    return hub.read_frame(sql, params)


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def land_pages(
    context: dg.AssetExecutionContext,
    hub: HubResource,
    spec: TableSpec,
    pages: Iterable[Sequence[dict[str, Any]]],
    source: str,
    shape: RecordShape = COMMERCETOOLS,
    cursor: Callable[[], str | None] | None = None,
) -> Load:
    """Stage every page of records, then merge them and move the watermark in one transaction.

    The watermark is the newest `lastModifiedAt` landed, but never later than the moment the
    export started: a record changed mid-export is then picked up by the next incremental run.
    For feeds read by cursor, `cursor()` is asked once the pages are consumed, and what it gives
    commits as the sync cursor together with the data.
    """
    started_at = datetime.now(UTC)
    clock, records = time.monotonic(), 0
    with hub.load(spec.name) as load:
        stage = load.stage(spec)
        for number, page in enumerate(pages, start=1):
            extracted_at = datetime.now(UTC)
            table = spec.to_arrow(
                {
                    "id": [shape.id(r) for r in page],
                    "version": [shape.version(r) for r in page] if shape.version else [None] * len(page),
                    "last_modified_at": [shape.modified_at(r) for r in page],
                    "document": [orjson.dumps(r).decode() for r in page],
                    "_extracted_at": [extracted_at] * len(page),
                    "_source": [source] * len(page),
                }
            )
            stage.append(table)
            records += len(page)
            newest = pa.compute.max(table["last_modified_at"]).as_py()
            if newest is not None:
                load.advance(watermark=min(newest, started_at))
            if number % PROGRESS_EVERY_PAGES == 0:
                rate = records / max(time.monotonic() - clock, 1e-9)
                context.log.info(f"{spec.name}: {records:,} records staged from {number} pages ({rate:,.0f}/s)")
        if cursor is not None:
            load.advance(cursor=cursor())
    return load


def conform(
    hub: HubResource,
    raw: TableSpec,
    targets: Sequence[TableSpec],
    flatten: Flatten,
    batch_size: int = 5_000,
) -> Load:
    """Turn the raw rows landed since the last conform into core rows, in one atomic load.

    `flatten` maps a list of source documents to `{table name: {column: values}}`. Child tables
    (`replace_children`) have every parent of the chunk replaced, so removed children disappear.
    """
    sync_key = f"conform:{raw.name}"
    state = hub.sync_state(sync_key)
    after = int(state.cursor) if state and state.cursor else 0
    upto = hub.scalar(f"SELECT max(_batch_id) FROM {quoted(raw.name)}") if hub.backend.table_exists(raw.name) else None
    by_name = {spec.name: spec for spec in targets}
    with hub.load(sync_key) as load:
        for spec in targets:
            load.stage(spec)
        if upto is not None and upto > after:
            for batch in hub.read_batches(
                f"SELECT id, document FROM {quoted(raw.name)} WHERE _batch_id > ? AND _batch_id <= ?",
                [after, upto],
                batch_size,
            ):
                documents = [orjson.loads(d) for d in batch.column("document").to_pylist()]
                for name, columns in flatten(documents).items():
                    stage = load.stage(by_name[name])
                    stage.append(by_name[name].to_arrow(columns))
                    if by_name[name].merge == "replace_children":
                        stage.replace_parents(batch.column("id"))
            load.advance(cursor=str(upto))
    return load


def naming_bad_records(system: str, flatten: Flatten) -> Flatten:
    """Name the record and field when a source document lacks something the flatten needs."""

    def guarded(documents: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
        try:
            return flatten(documents)
        except (KeyError, TypeError, AttributeError) as exc:
            for document in documents:
                try:
                    flatten([document])
                except (KeyError, TypeError, AttributeError):
                    raise ValueError(
                        f"{system} record {document.get('id')!r} cannot be conformed: missing or bad {exc}"
                    ) from None
            raise

    return guarded


def conformed_assets(
    name: str, raw: TableSpec, targets: Sequence[TableSpec], flatten: Flatten, *, system: str, group: str
) -> dg.AssetsDefinition:
    """Core tables conformed from one raw table, all in one atomic load, each its own asset."""
    specs = [
        dg.AssetSpec(asset_key(t), deps=[asset_key(raw)], group_name=group, description=t.description, kinds={"python"})
        for t in targets
    ]

    @dg.multi_asset(name=name, specs=specs, pool=HUB_POOL)
    def conformed(context: dg.AssetExecutionContext, hub: HubResource):
        load = conform(hub, raw, targets, naming_bad_records(system, flatten))
        for target in targets:
            yield materialization(hub, target, load)

    return conformed


def materialization(hub: HubResource, spec: TableSpec, load: Load, **extra: Any) -> dg.MaterializeResult:
    """What every hub asset reports: row count, column schema, a preview and what the load did."""
    result = load.results.get(spec.name)
    preview = hub.read_frame(f"SELECT * FROM {quoted(spec.name)} LIMIT 5")
    metadata: dict[str, Any] = {
        "dagster/row_count": hub.row_count(spec),
        "dagster/column_schema": column_schema(spec),
        "dagster/table_name": spec.name,
        "preview": table_preview(preview),
        "rows_staged": result.rows_staged if result else 0,
        "rows_changed": result.rows_changed if result else 0,
        "batch_id": load.batch_id,
        **extra,
    }
    return dg.MaterializeResult(asset_key=asset_key(spec), metadata=metadata)


def column_schema(spec: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=spec.column_descriptions.get(name))
            for name, kind in spec.all_columns
        ]
    )


def table_preview(frame: pd.DataFrame, width: int = 60) -> dg.TableMetadataValue:
    """A few rows as a Dagster table; long values are cut to `width` characters."""

    def cell(value: Any) -> str | int | float | bool | None:
        if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
            return None
        if isinstance(value, (bool, int, float)):
            return value
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    records = [dg.TableRecord({k: cell(v) for k, v in row.items()}) for row in frame.to_dict("records")]
    if not records:  # an empty table still shows its columns
        return dg.MetadataValue.table(records=[], schema=dg.TableSchema([dg.TableColumn(c) for c in frame.columns]))
    return dg.MetadataValue.table(records=records)
