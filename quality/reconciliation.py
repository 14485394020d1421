"""Counts reconcile: for every batch, source rows = loaded + quarantined + deduplicated.

`ops.batch_counts` (written by the row gate in the load itself) says how many rows a batch had per
dataset, how many went to the merge and how many to quarantine; `ops.batches` says how many the merge
changed. The check `counts_reconcile` verifies the arithmetic for every recorded batch of a dataset,
and, for its newest batch, that the hub really holds those rows: loaded = rows of the table carrying
the batch id, quarantined = quarantine rows of the load, deduplicated = staged - changed (rows the
merge skipped as unchanged or repeated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
import orjson

from quality.config import QualityRules
from quality.paths import report_path
from quality.quarantine import QUARANTINE
from quality.rows import BATCH_COUNTS, THRESHOLD_CHECK, threshold_metadata
from resources.hub import HubResource, TableSpec, quoted

RECONCILE_CHECK = "counts_reconcile"


@dataclass(frozen=True)
class Reconciliation:
    dataset: str
    batch_id: int
    source_rows: int
    loaded_rows: int
    quarantined_rows: int
    deduplicated_rows: int
    inconsistent_batches: tuple[int, ...]  # batches whose recorded counts do not add up

    @property
    def balanced(self) -> bool:
        accounted = self.loaded_rows + self.quarantined_rows + self.deduplicated_rows
        return self.source_rows == accounted and not self.inconsistent_batches

    def metadata(self) -> dict[str, Any]:
        return {
            "batch_id": dg.MetadataValue.int(self.batch_id),
            "source_rows": dg.MetadataValue.int(self.source_rows),
            "loaded_rows": dg.MetadataValue.int(self.loaded_rows),
            "quarantined_rows": dg.MetadataValue.int(self.quarantined_rows),
            "deduplicated_rows": dg.MetadataValue.int(self.deduplicated_rows),
            "quality_report": report_link(),
        }


def merge_counts(hub: HubResource, batch_id: int, dataset: str) -> tuple[int, int]:
    """(staged, changed) of `dataset` in the commit of `batch_id`, from ops.batches."""
    tables = hub.scalar("SELECT tables FROM ops.batches WHERE batch_id = ?", [batch_id])
    counts = orjson.loads(tables).get(dataset, {}) if tables else {}
    return int(counts.get("staged", 0)), int(counts.get("changed", 0))


def reconcile(hub: HubResource, spec: TableSpec) -> Reconciliation | None:
    """The newest batch of `spec` reconciled against the hub; None when no batch was counted yet."""
    if not hub.backend.table_exists(BATCH_COUNTS.name):
        return None
    counts = hub.read_frame(
        f"SELECT load_id, source_rows, staged_rows, quarantined_rows, _batch_id FROM {quoted(BATCH_COUNTS.name)} "
        "WHERE dataset = ? ORDER BY _batch_id",
        [spec.name],
    )
    if counts.empty:
        return None
    inconsistent = counts[counts.source_rows != counts.staged_rows + counts.quarantined_rows]
    newest = counts.iloc[-1]
    batch_id = int(newest["_batch_id"])
    staged, changed = merge_counts(hub, batch_id, spec.name)
    loaded = int(hub.scalar(f"SELECT count(*) FROM {quoted(spec.name)} WHERE _batch_id = ?", [batch_id]))
    quarantined = 0
    if hub.backend.table_exists(QUARANTINE.name):
        quarantined = int(
            hub.scalar(
                f"SELECT count(*) FROM {quoted(QUARANTINE.name)} WHERE dataset = ? AND load_id = ?",
                [spec.name, newest["load_id"]],
            )
        )
    if staged != int(newest["staged_rows"]):
        inconsistent = counts.iloc[[-1]] if inconsistent.empty else inconsistent
    return Reconciliation(
        dataset=spec.name,
        batch_id=batch_id,
        source_rows=int(newest["source_rows"]),
        loaded_rows=loaded,
        quarantined_rows=quarantined,
        deduplicated_rows=staged - changed,
        inconsistent_batches=tuple(int(b) for b in inconsistent["_batch_id"]),
    )


def threshold_result(spec: TableSpec, found: Reconciliation | None, rules: QualityRules) -> dg.AssetCheckResult:
    """The passing `bad_rows_within_threshold` result of a batch that merged (a refused one raised)."""
    bad, total = (found.quarantined_rows, found.source_rows) if found else (0, 0)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(spec.name.split(".")),
        check_name=THRESHOLD_CHECK,
        passed=True,
        description=(
            f"{spec.name}: {bad:,} of {total:,} rows failed their row rules, within "
            f"{rules.threshold_setting(spec.name)} = {rules.threshold(spec.name)}"
        ),
        metadata={**threshold_metadata(bad, total, rules.threshold(spec.name)), "quality_report": report_link()},
    )


def report_link() -> dg.MetadataValue:
    return dg.MetadataValue.path(str(report_path()))


def reconciliation_result(
    hub: HubResource, spec: TableSpec, found: Reconciliation | None = None
) -> dg.AssetCheckResult:
    """The `counts_reconcile` check result of `spec`'s newest batch (`found`, else reconciled now)."""
    found = found or reconcile(hub, spec)
    key = dg.AssetKey(spec.name.split("."))
    if found is None:
        return dg.AssetCheckResult(
            asset_key=key, check_name=RECONCILE_CHECK, passed=True, description=f"{spec.name}: no batch counted yet"
        )
    accounted = found.loaded_rows + found.quarantined_rows + found.deduplicated_rows
    description = (
        f"{spec.name} batch {found.batch_id}: {found.source_rows:,} source rows = {found.loaded_rows:,} loaded + "
        f"{found.quarantined_rows:,} quarantined + {found.deduplicated_rows:,} deduplicated"
    )
    if found.source_rows != accounted:
        description = (
            f"{spec.name} batch {found.batch_id}: {found.source_rows:,} source rows but {accounted:,} accounted for "
            f"({found.loaded_rows:,} loaded in the table + {found.quarantined_rows:,} in quality.quarantine + "
            f"{found.deduplicated_rows:,} deduplicated)"
        )
    if found.inconsistent_batches:
        description += f"; recorded counts do not add up for batches {list(found.inconsistent_batches)}"
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=RECONCILE_CHECK,
        passed=found.balanced,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=found.metadata(),
    )
