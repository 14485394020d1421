"""Row-level quarantine before a batch merges, and the per-batch counts that must reconcile.

A loader hands every conformed chunk of a table to its `RowGate`. The gate buffers chunks into large
frames (`VALIDATE_BYTES`), validates each frame once with the table's row rules (Great Expectations),
stages the passing rows and stages the failing rows, whole, in `quality.quarantine`, all in the
loader's own hub load. On `close` it stages the table's row in `ops.batch_counts` (same load) and
refuses the whole batch, by raising `BatchRefused`, when too many rows failed: the loader reports that
as a failed `bad_rows_within_threshold` check and the load rolls back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson
import pyarrow as pa

from quality.commerce import COMMERCE_SUITES
from quality.config import QualityRules
from quality.orders import ORDERS_SUITES
from quality.payments import PAYMENTS_SUITES
from quality.quarantine import QUARANTINE
from quality.validation import MAX_FAILING_KEYS, DatasetSuite, validate_rows
from quality.warehouse import WAREHOUSE_SUITES
from resources.hub import Load, TableSpec

THRESHOLD_CHECK = "bad_rows_within_threshold"

# Rows buffered, then validated at once: a GX validation costs ~0.05 s whatever its size, rows next to
# nothing (11 frames of 529,000 prices: 0.55 s, 3 frames: 0.15 s); but each buffered frame (and GX's
# copies of it) is memory, per table of a load. Bytes, not rows: variant rows are several times wider.
VALIDATE_BYTES = 16 * 1024 * 1024

# The suites of the tables loaders conform from a source: their row rules gate every batch.
ROW_SUITES: dict[str, DatasetSuite] = {
    s.table: s for s in (*COMMERCE_SUITES, *ORDERS_SUITES, *PAYMENTS_SUITES, *WAREHOUSE_SUITES) if s.row_rules
}

BATCH_COUNTS = TableSpec(
    "ops.batch_counts",
    (
        ("load_id", "text"),
        ("dataset", "text"),
        ("source", "text"),
        ("run_id", "text"),
        ("source_rows", "bigint"),
        ("staged_rows", "bigint"),
        ("quarantined_rows", "bigint"),
        ("counted_at", "timestamp"),
    ),
    ("load_id", "dataset"),
    merge="append",
    description="Rows per dataset per load: conformed from the source, staged to merge, and quarantined.",
    column_descriptions={
        "source_rows": "Rows the source batch conformed to for this dataset.",
        "staged_rows": "Rows that passed the row rules and went to the merge (it may skip duplicates).",
        "quarantined_rows": "Rows sent to quality.quarantine.",
    },
)


def record_key(row: Mapping[str, Any], key_columns: tuple[str, ...]) -> str:
    return orjson.dumps({c: row.get(c) for c in key_columns}).decode()


def row_quarantine_id(dataset: str, source: str, key: str) -> str:
    """One quarantine row per dataset, source and record key: quarantining it again rewrites it."""
    return hashlib.sha256(f"{dataset}\x1f{source}\x1f{key}".encode()).hexdigest()[:32]


def reason(row: Mapping[str, Any], failed: list[tuple[str, str | None]]) -> str:
    """`cent_amount=-500 fails expect_column_values_to_be_between(cent_amount, min_value=0)`, `; `-joined."""
    parts = [
        f"{column}={orjson.dumps(row.get(column)).decode()} fails {label}" if column else f"fails {label}"
        for label, column in failed
    ]
    return "; ".join(parts)


@dataclass
class BatchCount:
    dataset: str
    source_rows: int = 0
    staged_rows: int = 0
    quarantined_rows: int = 0
    examples: dict[str, list[dict[str, Any]]] | None = None  # failed label -> a few failing keys


class RowGate:
    """Stages one table's rows of a load after its row rules; failing rows to quarantine."""

    def __init__(
        self,
        load: Load,
        spec: TableSpec,
        suite: DatasetSuite | None,
        rules: QualityRules,
        *,
        source: str,
        load_id: str,
        run_id: str | None = None,
        validate_bytes: int = VALIDATE_BYTES,
    ) -> None:
        self.load, self.spec, self.suite, self.rules = load, spec, suite, rules
        self.source, self.load_id, self.run_id = source, load_id, run_id
        self.stage = load.stage(spec)
        self.quarantine = load.stage(QUARANTINE) if suite and suite.row_rules else None
        self.validate_bytes = validate_bytes
        self.count = BatchCount(spec.name, examples={})
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def append(self, table: pa.Table) -> None:
        self.count.source_rows += table.num_rows
        if self.quarantine is None:
            self.stage.append(table)
            self.count.staged_rows += table.num_rows
            return
        self._buffer.append(table)
        self._buffered += table.nbytes
        if self._buffered >= self.validate_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._buffered = [], 0
        assert self.suite is not None and self.quarantine is not None
        columns = self.suite.row_columns(self.rules)
        failures = validate_rows(self.suite, table.select(columns).to_pandas(), self.rules)
        if not failures:
            self.stage.append(table)
            self.count.staged_rows += table.num_rows
            return
        bad = sorted(failures)
        keep = pa.compute.invert(pa.compute.is_in(pa.array(range(table.num_rows)), pa.array(bad)))
        good = table.filter(keep)
        self.stage.append(good)
        self.count.staged_rows += good.num_rows
        rows = table.take(pa.array(bad)).to_pylist()
        self.quarantine.append(self._quarantine_rows(rows, [failures[p] for p in bad]))
        self.count.quarantined_rows += len(bad)
        for row, failed in zip(rows, (failures[p] for p in bad), strict=True):
            for label, _ in failed:
                keys = self.count.examples.setdefault(label, [])  # type: ignore[union-attr]
                if len(keys) < MAX_FAILING_KEYS:
                    keys.append({c: row.get(c) for c in self.suite.key_columns})

    def _quarantine_rows(self, rows: list[dict[str, Any]], failed: list[list[tuple[str, str | None]]]) -> pa.Table:
        assert self.suite is not None
        now, n = datetime.now(UTC), len(rows)
        keys = [record_key(r, self.suite.key_columns) for r in rows]
        return QUARANTINE.to_arrow(
            {
                "quarantine_id": [row_quarantine_id(self.spec.name, self.source, k) for k in keys],
                "dataset": [self.spec.name] * n,
                "source": [self.source] * n,
                "batch": [None] * n,
                "line": [None] * n,
                "reason": [reason(r, f) for r, f in zip(rows, failed, strict=True)],
                "expectation": ["; ".join(label for label, _ in f) for f in failed],
                "record_key": keys,
                "record": [orjson.dumps(r).decode() for r in rows],
                "load_id": [self.load_id] * n,
                "run_id": [self.run_id] * n,
                "quarantined_at": [now] * n,
                "released_at": [None] * n,
            }
        )

    def close(self) -> BatchCount:
        """Validate what is buffered, refuse the batch if too much failed, and stage the batch's counts."""
        self._flush()
        count = self.count
        if self.rules.refuses(self.spec.name, count.quarantined_rows, count.source_rows):
            raise BatchRefused(self.spec.name, count, self.rules)
        self.load.stage(BATCH_COUNTS).append(
            BATCH_COUNTS.to_arrow(
                {
                    "load_id": [self.load_id],
                    "dataset": [self.spec.name],
                    "source": [self.source],
                    "run_id": [self.run_id],
                    "source_rows": [count.source_rows],
                    "staged_rows": [count.staged_rows],
                    "quarantined_rows": [count.quarantined_rows],
                    "counted_at": [datetime.now(UTC)],
                }
            )
        )
        return count


class BatchRefused(dg.Failure):
    """A batch with too many rows failing their row rules: nothing of it merges."""

    def __init__(self, dataset: str, count: BatchCount, rules: QualityRules) -> None:
        share = count.quarantined_rows / count.source_rows
        setting = rules.threshold_setting(dataset)
        super().__init__(
            description=(
                f"{dataset}: {count.quarantined_rows:,} of {count.source_rows:,} rows ({share:.2%}) failed their row "
                f"rules, above {setting} = {rules.threshold(dataset)} (RULES_FILE); the whole batch is refused and "
                "nothing of it merged. Fix the source, or the rule, and run again."
            ),
            metadata={
                **threshold_metadata(count.quarantined_rows, count.source_rows, rules.threshold(dataset)),
                "dataset": dg.MetadataValue.text(dataset),
                "threshold_setting": dg.MetadataValue.text(setting),
                "failing_keys": dg.MetadataValue.json(count.examples or {}),
            },
        )
        self.dataset = dataset

    def check_result(self) -> dg.AssetCheckResult:
        """The failed blocking check that records the refusal on the dataset's asset."""
        return dg.AssetCheckResult(
            asset_key=dg.AssetKey(self.dataset.split(".")),
            check_name=THRESHOLD_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=self.description,
            metadata=self.metadata,
        )


def threshold_metadata(bad: int, total: int, threshold: float) -> dict[str, dg.MetadataValue]:
    return {
        "bad_rows": dg.MetadataValue.int(bad),
        "total_rows": dg.MetadataValue.int(total),
        "bad_row_fraction": dg.MetadataValue.float(bad / total if total else 0.0),
        "threshold": dg.MetadataValue.float(threshold),
    }
