"""How any source lands: pages into `raw` (one atomic load), then `raw` into `core` (only what changed).

Source modules (`assets/commerce.py`, ...) say what their data is; these helpers do the moving, the
sync-state bookkeeping and the materialization metadata, the same way for every system.
"""

import functools
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Protocol, TypeVar

import dagster as dg
import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from quality.config import quality_rules
from quality.quarantine import QUARANTINE, Quarantined, quarantine_rows
from quality.reconciliation import RECONCILE_CHECK, reconcile, reconciliation_result, threshold_result
from quality.rows import ROW_SUITES, THRESHOLD_CHECK, BatchRefused, RowGate
from resources.http import mapped_ahead, prefetched
from resources.hub import HUB_POOL, HubResource, Load, TableSpec, held_open, quoted

T = TypeVar("T")

#: raw rows flattened at a time: 2,000 product projections peak 100 MB lower than 5,000, for the same time
CONFORM_BATCH_ROWS = 2_000
#: batches a `SqlFlatten` flattens at once: DuckDB flattens a batch on one core, and the conform's own
#: thread (row rules, staging) left the other one idle most of the time (`core_catalog` 3.5 s -> 2.9 s)
FLATTEN_THREADS = 2

PythonFlatten = Callable[[list[dict[str, Any]]], dict[str, dict[str, list]]]
"""Source documents into `{table name: {column: values}}`."""


@dataclass(frozen=True)
class SqlFlatten:
    """Source documents flattened by DuckDB SQL in memory, whatever the hub's backend.

    Each document is parsed once, in C, by the `prepare` statements; this is several times faster
    than parsing and walking it in Python, which matters for large documents such as product
    projections. `prepare` runs first over `documents` (`id`, `document`: the raw JSON text);
    `tables` maps each target table to the SELECT of its rows. A document the SQL cannot read
    (a number that is not one, a timestamp that is not one) fails the batch with its id named.
    `batch_rows` documents are flattened at a time: a few thousand large ones, more small ones, as
    each batch costs a few milliseconds to bind its SQL.
    """

    prepare: tuple[str, ...]
    tables: dict[str, str]
    batch_rows: int = CONFORM_BATCH_ROWS

    def __call__(self, batch: pa.RecordBatch | pa.Table, source: str = "source") -> dict[str, pa.Table]:
        try:
            return self._run(batch)
        except duckdb.Error:
            unreadable = self._first_unreadable(batch)
            if unreadable is None:  # no single document fails: not the data (out of memory, say)
                raise
            record_id, reason = unreadable
            raise ValueError(f"{source} record {record_id!r} cannot be conformed: {reason}") from None

    def _run(self, batch: pa.RecordBatch | pa.Table) -> dict[str, pa.Table]:
        with sql_engine().cursor() as con:  # its temp tables go with it
            con.execute("SET TimeZone = 'UTC'")
            con.register("documents", batch)
            for statement in self.prepare:
                con.execute(statement)
            return {name: con.sql(select).to_arrow_table() for name, select in self.tables.items()}

    def _first_unreadable(self, batch: pa.RecordBatch | pa.Table) -> tuple[Any, str] | None:
        """The id of the first document the SQL fails on alone, found by halving the batch, and DuckDB's reason."""
        while batch.num_rows > 1:
            head = batch.slice(0, batch.num_rows // 2)
            batch = head if self._error(head) else batch.slice(head.num_rows)
        error = self._error(batch) if batch.num_rows else None
        if error is None:
            return None
        return batch.column("id")[0].as_py(), str(error).splitlines()[0][:300]

    def _error(self, batch: pa.RecordBatch | pa.Table) -> duckdb.Error | None:
        try:
            self._run(batch)
        except duckdb.Error as exc:
            return exc
        return None


Flatten = PythonFlatten | SqlFlatten


@functools.cache
def sql_engine() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB for reading JSON in C (`SqlFlatten`, `land_json_pages`).

    Opening a database costs 10 to 20 ms, a cursor on it nothing. Its Arrow keeps DuckDB's JSON type
    (`arrow.json`; booleans come out as `arrow.bool8`), so a DuckDB hub stores the JSON it produced
    without parsing it again: 200 MB of documents staged 0.4 s faster (`TableSpec.conformed`).
    """
    return duckdb.connect(config={"arrow_lossless_conversion": True, "threads": 1})


# The types `json_fields` reads a document's fields as: text, or JSON text kept as it is.
TEXT, JSON = "VARCHAR", "JSON"


def json_fields(structure: dict[str, Any]) -> str:
    """SQL that parses `document` once into a struct of the fields `structure` names (DuckDB `json_transform`).

    A field the document lacks, or holds as null, reads as null.
    """
    return f"json_transform(document, '{orjson.dumps(structure).decode()}')"


RAW_COLUMNS = (
    ("id", "text"),
    ("version", "bigint"),
    ("last_modified_at", "timestamp"),
    ("document", "json"),
    ("_extracted_at", "timestamp"),
    ("_source", "text"),
)
PROGRESS_EVERY_RECORDS = 50_000
#: pages are typed and staged this many records at a time: pyarrow's per-call cost is paid per chunk, not per page
LAND_CHUNK_RECORDS = 5_000
#: pages kept as JSON text are staged this many bytes at a time: DuckDB binds its SQL once per chunk
LAND_CHUNK_BYTES = 4 << 20
#: what a record that cannot be identified or typed raises while its raw row is built
LANDING_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError, pa.ArrowException)
#: a source document larger than this is quarantined (cut to its first KEPT_BYTES) instead of landing
MAX_DOCUMENT_BYTES = 1 << 20
KEPT_BYTES = 64 << 10


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
    """A raw landing table: the source document whole, keyed by source id, newest version kept.

    An embedded hub keeps the key without an index, as for every raw table (`TableSpec.key_index`), and
    stores the documents with zstd: writing 250 MB of product projections took a second less.
    """
    changes = {"version_column": "version"} if versioned else {"change_columns": ("document",)}
    return TableSpec(
        f"raw.{table}",
        RAW_COLUMNS,
        ("id",),
        zstd_columns=("document",),
        description=description,
        **changes,
    )


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


class JsonPage(Protocol):
    """A page of records as its source sent it: JSON text with the records under `results`."""

    text: str
    count: int
    fetched_at: datetime


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

    def raw_rows(chunk: list[tuple[Sequence[dict[str, Any]], datetime]]) -> tuple[pa.Table, list[Quarantined]]:
        records = [record for page, _ in chunk for record in page]
        return _landable(spec, shape, records, source, [at for page, at in chunk for _ in page])

    stamped = ((page, datetime.now(UTC)) for page in pages)
    chunks = _chunked(stamped, lambda page: len(page[0]), LAND_CHUNK_RECORDS)
    return _land(context, hub, spec, source, map(raw_rows, chunks), cursor)


def land_json_pages(
    context: dg.AssetExecutionContext, hub: HubResource, spec: TableSpec, pages: Iterable[JsonPage], source: str
) -> Load:
    """`land_pages` for commercetools-shaped pages kept as JSON text (`COMMERCETOOLS` record shape).

    DuckDB splits, checks and types the records in C, so no Python object is built per record, in a
    thread of its own: the next chunk is typed while this one is staged and pages keep arriving.
    Records it finds unlandable (no string id, no integer version, a modification time that is no
    time, too large) go through `land_pages`' own checks, for the same quarantine and reasons.
    """

    def raw_rows(chunk: list[JsonPage]) -> tuple[pa.Table, list[Quarantined]]:
        table, unlandable = _typed_json_records(chunk, source)
        if not unlandable.num_rows:
            return table, []
        records = [orjson.loads(text) for text in unlandable.column("document").to_pylist()]
        good, bad = _landable(spec, COMMERCETOOLS, records, source, unlandable.column("_extracted_at").to_pylist())
        return pa.concat_tables([table, good.cast(table.schema)]), bad  # orjson wrote those documents

    chunks = _chunked(pages, lambda page: len(page.text), LAND_CHUNK_BYTES)
    return _land(context, hub, spec, source, prefetched(map(raw_rows, chunks), depth=1), None)


# Each page is parsed twice in C, once for the documents and once for the fields that key a raw row;
# a record lands when its id is a non-empty string, its version an integer, its modification time
# absent or a time, and its document within MAX_DOCUMENT_BYTES. Rows keep their page order.
_KEY_FIELDS = orjson.dumps({"results": [{"id": JSON, "version": JSON, "lastModifiedAt": JSON}]}).decode()
_JSON_RECORDS = f"""
    SELECT key.id ->> '$' AS id, TRY_CAST(key.version AS BIGINT) AS version,
        TRY_CAST(key.lastModifiedAt ->> '$' AS TIMESTAMPTZ) AS last_modified_at,
        document, fetched_at AS _extracted_at, $source AS _source,
        coalesce(
            json_type(key.id) = 'VARCHAR' AND key.id ->> '$' <> ''
            AND json_type(key.version) IN ('BIGINT', 'UBIGINT') AND TRY_CAST(key.version AS BIGINT) IS NOT NULL
            AND (coalesce(json_type(key.lastModifiedAt), 'NULL') = 'NULL'
                OR json_type(key.lastModifiedAt) = 'VARCHAR'
                AND TRY_CAST(key.lastModifiedAt ->> '$' AS TIMESTAMPTZ) IS NOT NULL)
            AND strlen(CAST(document AS VARCHAR)) <= {MAX_DOCUMENT_BYTES},
            false) AS landable
    FROM (SELECT fetched_at, unnest(json_extract(text, '$.results[*]')) AS document,
            unnest(json_transform(text, '{_KEY_FIELDS}').results) AS key
          FROM pages)"""


def _typed_json_records(pages: Sequence[JsonPage], source: str) -> tuple[pa.Table, pa.Table]:
    """The raw rows of the records in `pages`: (those that land, those `land_pages`' checks must judge)."""
    frame = pa.table(
        {
            "text": pa.array([p.text for p in pages], pa.string()),
            "fetched_at": pa.array([p.fetched_at for p in pages], pa.timestamp("us", tz="UTC")),
        }
    )
    with sql_engine().cursor() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("pages", frame)
        rows = con.sql(_JSON_RECORDS, params={"source": source}).to_arrow_table()
    landable = rows.column("landable").cast(pa.bool_())  # DuckDB writes BOOLEAN as arrow.bool8 here
    rows = rows.drop_columns(["landable"])
    if pa.compute.all(landable).as_py():  # the usual case: no copy of the documents
        return rows, rows.slice(0, 0)
    return rows.filter(landable), rows.filter(pa.compute.invert(landable))


def _chunked(pages: Iterable[T], size: Callable[[T], int], limit: int) -> Iterator[list[T]]:
    """`pages` in lists of about `limit` (by `size`), so per-call costs are paid per chunk, not per page."""
    chunk: list[T] = []
    chunked = 0
    for page in pages:
        chunk.append(page)
        chunked += size(page)
        if chunked >= limit:
            yield chunk
            chunk, chunked = [], 0
    if chunk:
        yield chunk


def _land(
    context: dg.AssetExecutionContext,
    hub: HubResource,
    spec: TableSpec,
    source: str,
    chunks: Iterable[tuple[pa.Table, list[Quarantined]]],
    cursor: Callable[[], str | None] | None,
) -> Load:
    """Stage each chunk's raw rows and quarantine its unlandable records, in one load, logging progress."""
    started_at = datetime.now(UTC)
    clock, records, logged = time.monotonic(), 0, 0
    with held_open(hub), hub.load(spec.name) as load:
        load.stage(spec)  # an empty export still creates the table and commits the sync state
        for table, bad in chunks:
            _stage_landed(context, load, spec, source, table, bad, started_at)
            records += table.num_rows + len(bad)
            if records - logged >= PROGRESS_EVERY_RECORDS:
                rate = records / max(time.monotonic() - clock, 1e-9)
                context.log.info(f"{spec.name}: {records:,} records staged ({rate:,.0f}/s)")
                logged = records
        if cursor is not None:
            load.advance(cursor=cursor())
    return load


def _stage_landed(
    context: dg.AssetExecutionContext,
    load: Load,
    spec: TableSpec,
    source: str,
    table: pa.Table,
    bad: Sequence[Quarantined],
    started_at: datetime,
) -> None:
    """Stage raw rows, quarantine the records that cannot land, and move the watermark."""
    if not table.num_rows and not bad:
        return
    load.stage(spec).append(table)
    if bad:
        context.log.warning(f"{spec.name}: {len(bad)} record(s) of {source} quarantined: {bad[0].reason}")
        load.stage(QUARANTINE).append(quarantine_rows(spec.name, source, None, list(bad)))
    newest = pa.compute.max(table["last_modified_at"]).as_py()
    if newest is not None:
        load.advance(watermark=min(newest, started_at))


def _raw_rows(
    spec: TableSpec,
    shape: RecordShape,
    page: Sequence[dict[str, Any]],
    source: str,
    extracted_at: Sequence[datetime],
) -> pa.Table:
    """The raw rows of `page`, each extracted at its `extracted_at`; raises on a record it cannot identify or type."""
    ids = [shape.id(r) for r in page]
    versions = [shape.version(r) for r in page] if shape.version else [None] * len(page)
    for record_id, version in zip(ids, versions, strict=True):
        if not isinstance(record_id, str) or not record_id:
            raise ValueError(f"'id' is {record_id!r}, not a non-empty string")
        if shape.version and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValueError(f"'version' is {version!r}, not an integer")
    modified_at = [shape.modified_at(r) for r in page]
    for value in modified_at:
        if value is not None and not isinstance(value, (str, datetime)):
            raise ValueError(f"the modification time is {value!r}, not a timestamp")
    documents = [orjson.dumps(r).decode() for r in page]
    for document in documents:
        if len(document) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"the document is {len(document):,} bytes, above the {MAX_DOCUMENT_BYTES:,}-byte limit")
    return spec.to_arrow(
        {
            "id": ids,
            "version": versions,
            "last_modified_at": modified_at,
            "document": documents,
            "_extracted_at": extracted_at,
            "_source": [source] * len(page),
        }
    )


def _landable(
    spec: TableSpec,
    shape: RecordShape,
    page: Sequence[dict[str, Any]],
    source: str,
    extracted_at: Sequence[datetime],
) -> tuple[pa.Table, list[Quarantined]]:
    """The raw rows of the records of `page` that can land, and the others for quarantine with a reason."""
    try:
        return _raw_rows(spec, shape, page, source, extracted_at), []
    except LANDING_ERRORS:
        pass
    good, good_at, bad = [], [], []
    for record, at in zip(page, extracted_at, strict=True):
        try:
            _raw_rows(spec, shape, [record], source, [at])
            good.append(record)
            good_at.append(at)
        except LANDING_ERRORS as exc:
            reason = f"cannot land in {spec.name}: {_reason(exc)}"
            kept = _keepable(record)
            key = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
            key = key or hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()
            bad.append(Quarantined(None, reason, kept, key=key))
    return _raw_rows(spec, shape, good, source, good_at), bad


def _keepable(record: Any) -> dict[str, Any] | list[Any]:
    """The record as quarantine can store it: whole when it serializes within the limit, else its text cut short."""
    try:
        text = orjson.dumps(record).decode()
    except (TypeError, ValueError):
        return {"unserializable_record": repr(record)[:KEPT_BYTES]}
    if len(text) > MAX_DOCUMENT_BYTES:
        return {"truncated_record": text[:KEPT_BYTES]}
    return record if isinstance(record, (dict, list)) else [record]


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the required field {exc} is missing"
    return f"{type(exc).__name__}: {exc}"[:300]


def conform(
    hub: HubResource,
    raw: TableSpec,
    targets: Sequence[TableSpec],
    flatten: Flatten,
    batch_size: int | None = None,
    run_id: str | None = None,
) -> Load:
    """Turn the raw rows landed since the last conform into core rows, in one atomic load.

    `flatten` maps the raw rows to each target's rows: a `SqlFlatten`, or a function of the parsed
    documents that returns `{table name: {column: values}}`; the next batch is read and flattened in a
    read-ahead thread while the current one's rows are checked. Child tables
    (`replace_children`) have every parent of the chunk replaced, so removed children disappear.
    Every table's rows pass its row rules first (`quality/rows.py`): failing rows go to
    `quality.quarantine` and the counts to `ops.batch_counts`, in the same load; a table with too
    many failing rows refuses the whole batch (`BatchRefused`), and nothing of it merges.
    """
    if batch_size is None:
        batch_size = flatten.batch_rows if isinstance(flatten, SqlFlatten) else CONFORM_BATCH_ROWS
    with held_open(hub):
        return _conform(hub, raw, targets, flatten, batch_size, run_id)


def _conform(
    hub: HubResource,
    raw: TableSpec,
    targets: Sequence[TableSpec],
    flatten: Flatten,
    batch_size: int,
    run_id: str | None,
) -> Load:
    sync_key = f"conform:{raw.name}"
    state = hub.sync_state(sync_key)
    after = int(state.cursor) if state and state.cursor else 0
    upto = hub.scalar(f"SELECT max(_batch_id) FROM {quoted(raw.name)}") if hub.backend.table_exists(raw.name) else None
    by_name = {spec.name: spec for spec in targets}
    rules, load_id = quality_rules(), uuid.uuid4().hex
    with hub.load(sync_key) as load:
        gates = {
            spec.name: RowGate(
                load, spec, ROW_SUITES.get(spec.name), rules, source=raw.name, load_id=load_id, run_id=run_id
            )
            for spec in targets
        }
        if upto is not None and upto > after:
            batches = hub.read_batches(
                f"SELECT id, document FROM {quoted(raw.name)} WHERE _batch_id > ? AND _batch_id <= ?",
                [after, upto],
                batch_size,
            )

            def flattened(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[str, pa.Table]]:
                return batch, flattened_rows(flatten, batch, raw, targets)

            workers = FLATTEN_THREADS if isinstance(flatten, SqlFlatten) else 1  # Python flattens hold the GIL
            for batch, tables in prefetched(mapped_ahead(flattened, batches, workers), depth=1):
                for name, rows in tables.items():
                    gates[name].append(rows)
                    if by_name[name].merge == "replace_children":
                        load.stage(by_name[name]).replace_parents(batch.column("id"))
            load.advance(cursor=str(upto))
        for gate in gates.values():
            gate.close()
    return load


def flattened_rows(
    flatten: Flatten, batch: pa.RecordBatch | pa.Table, raw: TableSpec, targets: Sequence[TableSpec]
) -> dict[str, pa.Table]:
    """Each target's rows from a batch of `raw` rows (`id`, `document`), in the target's declared schema."""
    by_name = {spec.name: spec for spec in targets}
    if isinstance(flatten, SqlFlatten):
        return {name: by_name[name].conformed(rows) for name, rows in flatten(batch, raw.name).items()}
    documents = [orjson.loads(d) for d in batch.column("document").to_pylist()]
    return {name: by_name[name].to_arrow(columns) for name, columns in flatten(documents).items()}


def naming_bad_records(system: str, flatten: PythonFlatten) -> PythonFlatten:
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

    @dg.multi_asset(name=name, specs=specs, check_specs=batch_check_specs(targets), pool=HUB_POOL)
    def conformed(context: dg.AssetExecutionContext, hub: HubResource):
        with held_open(hub):
            named = flatten if isinstance(flatten, SqlFlatten) else naming_bad_records(system, flatten)
            yield from conform_and_check(hub, raw, targets, named, context.run_id)

    return conformed


def batch_check_specs(targets: Sequence[TableSpec]) -> list[dg.AssetCheckSpec]:
    """The blocking checks every conformed batch gets, evaluated right after its load.

    `counts_reconcile` for every table; `bad_rows_within_threshold` for tables with row rules.
    """
    checks = (
        (RECONCILE_CHECK, "Source rows = loaded + quarantined + deduplicated for the newest batch.", targets),
        (
            THRESHOLD_CHECK,
            "The share of rows failing the row rules is within quality.max_bad_row_fraction.",
            [t for t in targets if t.name in ROW_SUITES],
        ),
    )
    return [
        dg.AssetCheckSpec(name, asset=asset_key(t), blocking=True, description=description)
        for name, description, tables in checks
        for t in tables
    ]


def conform_and_check(
    hub: HubResource, raw: TableSpec, targets: Sequence[TableSpec], flatten: Flatten, run_id: str
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Conform `raw` into `targets`; a refused batch fails its threshold check, then the step."""
    try:
        load = conform(hub, raw, targets, flatten, run_id=run_id)
    except BatchRefused as refused:
        yield refused.check_result()
        raise
    yield from conformed_results(hub, targets, load)


def conformed_results(
    hub: HubResource, targets: Sequence[TableSpec], load: Load
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Each table's materialization, with its batch counts, and its batch check results."""
    rules = quality_rules()
    found = {target.name: reconcile(hub, target) for target in targets}
    checks = [reconciliation_result(hub, target, found[target.name]) for target in targets]
    for target, check in zip(targets, checks, strict=True):
        yield materialization(hub, target, load, **{k: v for k, v in check.metadata.items() if k.endswith("_rows")})
    yield from checks
    yield from (threshold_result(t, found[t.name], rules) for t in targets if t.name in ROW_SUITES)


def materialization(hub: HubResource, spec: TableSpec, load: Load, **extra: Any) -> dg.MaterializeResult:
    """What every hub asset reports: row count, column schema, a preview and what the load did."""
    result = load.results.get(spec.name)
    with held_open(hub):
        preview = hub.read_frame(f"SELECT * FROM {quoted(spec.name)} LIMIT 5")
        row_count = hub.row_count(spec)
    metadata: dict[str, Any] = {
        "dagster/row_count": row_count,
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
