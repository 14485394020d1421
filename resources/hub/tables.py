"""Hub table declarations: one portable description, rendered as DDL and Arrow schema per backend."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

SCHEMAS = ("raw", "core", "serving", "quality", "ops")
#: bulk-loaded layers: an embedded hub keeps their keys by the merge, without an index (`TableSpec.key_index`)
UNINDEXED_SCHEMAS = ("raw", "core")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Logical column types and their Arrow form. Money is always an integer in minor units.
ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "json": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

# Columns every hub table carries, filled by the merge: the load batch that last wrote the row.
BATCH_COLUMNS = (("_batch_id", "bigint"), ("_loaded_at", "timestamp"))


def check_identifier(name: str, what: str = "identifier") -> str:
    """Reject anything but a plain lower-case SQL identifier, so names can be quoted safely."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} {name!r}: use lower-case letters, digits and underscores")
    return name


@dataclass(frozen=True)
class TableSpec:
    """A hub table.

    `merge` says how a batch lands: `upsert` by primary key; `replace_children`, which swaps
    every row of the parents named by `parent_key` for the batch's rows (variants of a product);
    `replace`, which swaps the whole table for the batch (read models rebuilt from core);
    or `append`, which inserts rows whose key is new and never touches a stored row (event history).
    An upsert skips rows that did not change: by a growing `version_column` when the source has
    one, else by comparing `change_columns` (default: every non-key column).
    `key_index` says whether an embedded (DuckDB) hub backs the key with a primary-key index. By default
    only serving, ops and quality tables have one: raw and core tables are bulk-loaded, and there the
    merge alone keeps one row per key (one writer, the hub pool; the core suites check keys unique
    after every load), while the index made each large load several times slower. Key columns are
    NOT NULL either way; a Postgres hub always has the primary key.
    `zstd_columns` are stored zstd-compressed by an embedded hub: large documents, which zstd writes
    faster and smaller than DuckDB's default string compression.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    version_column: str | None = None
    merge: str = "upsert"
    parent_key: str | None = None
    change_columns: tuple[str, ...] = ()
    key_index: bool | None = None
    zstd_columns: tuple[str, ...] = ()
    description: str = ""
    column_descriptions: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        schema, _, table = self.name.partition(".")
        if schema not in SCHEMAS:
            raise ValueError(f"table {self.name!r}: schema must be one of {', '.join(SCHEMAS)}")
        check_identifier(table, "table name")
        names = [c for c, _ in self.columns]
        for column, kind in self.columns:
            check_identifier(column, "column name")
            if kind not in ARROW_TYPES:
                raise ValueError(f"table {self.name!r}: column {column!r} has unknown type {kind!r}")
        named = (*self.primary_key, self.version_column, self.parent_key, *self.change_columns, *self.zstd_columns)
        missing = [c for c in named if c and c not in names]
        if missing:
            raise ValueError(f"table {self.name!r}: key columns {missing} are not among its columns")
        if self.merge not in ("upsert", "replace_children", "replace", "append"):
            raise ValueError(f"table {self.name!r}: unknown merge {self.merge!r}")
        if self.merge == "replace_children" and not self.parent_key:
            raise ValueError(f"table {self.name!r}: replace_children needs a parent_key")

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def table(self) -> str:
        return self.name.split(".")[1]

    @property
    def has_key_index(self) -> bool:
        """Whether an embedded hub indexes the key (`key_index`, by default by schema)."""
        return self.key_index if self.key_index is not None else self.schema not in UNINDEXED_SCHEMAS

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def compared_columns(self) -> list[str]:
        """Without a version column, the columns whose change makes a row change."""
        return list(self.change_columns) or [c for c in self.column_names if c not in self.primary_key]

    @property
    def all_columns(self) -> tuple[tuple[str, str], ...]:
        """The declared columns plus the batch columns the merge fills."""
        return self.columns + BATCH_COLUMNS

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of the batches a loader appends (declared columns only)."""
        return pa.schema([(c, ARROW_TYPES[t]) for c, t in self.columns])

    def conformed(self, table: pa.Table) -> pa.Table:
        """`table`'s declared columns in the declared schema, except that a JSON column DuckDB typed as
        JSON (`arrow.json`) keeps that type: an embedded hub then stores it without parsing it again."""
        table = table.select(self.column_names)
        schema = pa.schema(
            (name, table.schema.field(name).type)
            if kind == "json" and isinstance(table.schema.field(name).type, pa.JsonType)
            else (name, ARROW_TYPES[kind])
            for name, kind in self.columns
        )
        return table.cast(schema)

    def to_arrow(self, columns: dict[str, list]) -> pa.Table:
        """An Arrow table from column lists; timestamps may be datetimes or ISO-8601 strings."""
        arrays = []
        for name, kind in self.columns:
            values = columns[name]
            if kind == "timestamp":
                arrays.append(pa.array(values).cast(ARROW_TYPES[kind]))
            else:
                arrays.append(pa.array(values, ARROW_TYPES[kind]))
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)
