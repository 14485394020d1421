"""Row-level quarantine: source records that cannot land, kept whole with where they came from and why.

Any loader stages its quarantined rows in the same hub load as its good rows, so both commit
together or neither does. A row's id is a hash of (dataset, source, line or record key): loading the same source
again rewrites the same rows instead of adding copies. Rows a row rule refused (`expectation` set) can be
released once the rules change (`quality/release.py`); `released_at` then records when.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from resources.hub import TableSpec

QUARANTINE = TableSpec(
    "quality.quarantine",
    (
        ("quarantine_id", "text"),
        ("dataset", "text"),
        ("source", "text"),
        ("batch", "text"),
        ("line", "int"),
        ("reason", "text"),
        ("expectation", "text"),
        ("record_key", "json"),
        ("record", "json"),
        ("load_id", "text"),
        ("run_id", "text"),
        ("quarantined_at", "timestamp"),
        ("released_at", "timestamp"),
    ),
    ("quarantine_id",),
    change_columns=("batch", "reason", "expectation", "record", "load_id", "released_at"),
    description="Source records that could not land, with the dataset, source, line and reason.",
    column_descriptions={
        "dataset": "The hub table the record was meant for, e.g. core.supplier_offers.",
        "source": "Where the record came from, e.g. a file name.",
        "batch": "The source's own batch, e.g. a feed date.",
        "line": "Line number in the source (a file's header is line 1); null when the source has no lines.",
        "record": "The record as read, whole.",
        "expectation": "The row rules the record failed (labels, `; `-separated); null for unreadable records.",
        "record_key": "The record's key columns in the dataset, as JSON.",
        "load_id": "The load that quarantined the record (also in ops.batch_counts).",
        "run_id": "The Dagster run that quarantined the record.",
        "released_at": "When a release job loaded the record after a rule change; null while it waits.",
    },
)


@dataclass(frozen=True)
class Quarantined:
    """One record that cannot land."""

    line: int | None
    reason: str
    record: Mapping[str, Any] | list[Any]
    key: str | None = None  # the record's id in its source, for sources without lines


def quarantine_id(dataset: str, source: str, where: int | str | None) -> str:
    """Deterministic id of a record at line (or key) `where` of `source`, meant for `dataset`."""
    return hashlib.sha256(f"{dataset}\x1f{source}\x1f{where}".encode()).hexdigest()[:32]


def quarantine_rows(
    dataset: str, source: str, batch: str | None, records: Iterable[Quarantined], at: datetime | None = None
) -> pa.Table:
    """The Arrow rows of `quality.quarantine` for `records` of one source."""
    records = list(records)
    at = at or datetime.now(UTC)
    return QUARANTINE.to_arrow(
        {
            "quarantine_id": [quarantine_id(dataset, source, r.line if r.line is not None else r.key) for r in records],
            "dataset": [dataset] * len(records),
            "source": [source] * len(records),
            "batch": [batch] * len(records),
            "line": [r.line for r in records],
            "reason": [r.reason for r in records],
            "expectation": [None] * len(records),
            "record_key": [None] * len(records),
            "record": [orjson.dumps(r.record).decode() for r in records],
            "load_id": [None] * len(records),
            "run_id": [None] * len(records),
            "quarantined_at": [at] * len(records),
            "released_at": [None] * len(records),
        }
    )
