"""Turn a `DatasetSuite` into a blocking Dagster asset check.

The check reads the table and its reference lists through the `hub` resource, runs the suite
with Great Expectations (writing its Data Docs page), appends the outcome to
`quality.validation_runs` and reports an `AssetCheckResult` that links the quality report.
Blocking: a failed suite stops assets downstream of the checked one.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import dagster as dg
import pandas as pd

from quality.config import QualityRules, quality_rules
from quality.history import record_validation
from quality.paths import quality_dir, report_path
from quality.validation import DatasetSuite, HubTable, SuiteResult, has_large_sets, run_suite
from resources.hub import HubResource, held_open, quoted
from resources.hub.postgres import PostgresHub

AssetKeyLike = dg.AssetKey | str | Sequence[str]


class FrameReader(Protocol):
    """What reading references needs from the hub resource."""

    def read_frame(self, sql: str) -> pd.DataFrame: ...


def load_references(hub: FrameReader, suite: DatasetSuite) -> dict[str, list[Any]]:
    """Run each reference query; its first column, nulls dropped, becomes the value list."""
    refs: dict[str, list[Any]] = {}
    for name, sql in suite.references.items():
        frame = hub.read_frame(sql)
        refs[name] = frame.iloc[:, 0].dropna().tolist() if frame.shape[1] else []
    return refs


def suite_check_result(result: SuiteResult, validated_in: str = "pandas") -> dg.AssetCheckResult:
    """The Dagster view of a suite run: counts, pass rate and one entry per failed expectation."""
    metadata: dict[str, Any] = {
        "validated_in": dg.MetadataValue.text(validated_in),
        "rows_checked": dg.MetadataValue.int(result.rows_checked),
        "expectations_passed": dg.MetadataValue.int(result.passed_count),
        "expectations_failed": dg.MetadataValue.int(len(result.failed)),
        "pass_rate": dg.MetadataValue.float(float(result.pass_rate)),
        "unexpected_rows": dg.MetadataValue.int(result.unexpected_rows),
        "quality_report": dg.MetadataValue.path(str(report_path())),
    }
    if result.data_docs_path:
        metadata["data_docs"] = dg.MetadataValue.path(str(quality_dir() / result.data_docs_path))
    for outcome in result.failed:
        metadata[f"failed: {outcome.label}"] = dg.MetadataValue.json(outcome.as_dict())
    return dg.AssetCheckResult(
        passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.summary(),
        metadata=metadata,
    )


def suite_data(
    hub: HubResource, suite: DatasetSuite, references: Mapping[str, Sequence[Any]], rules: QualityRules
) -> pd.DataFrame | HubTable:
    """What GX validates: on Postgres the table where it lives, else the table read into pandas.

    In Postgres, GX validates 1.2x faster and in a third of the memory (benchmarks/gx_in_database.py).
    Suites checking membership in large reference lists stay in pandas: those lists would be sent as
    SQL literals.
    """
    backend = hub.backend
    if isinstance(backend, PostgresHub) and not has_large_sets([*suite.expectations(references), *suite.rows(rules)]):
        rows = int(hub.scalar(f"SELECT count(*) FROM {quoted(suite.table)}"))
        return HubTable(backend.sqlalchemy_url(), suite.table, rows)
    return hub.read_frame(suite.select_sql())


def build_suite_check(
    suite: DatasetSuite,
    asset_key: AssetKeyLike,
    keys_by_table: Mapping[str, AssetKeyLike] | None = None,
    pool: str | None = None,
) -> dg.AssetChecksDefinition:
    """A blocking asset check named `suite.name` on `asset_key`; needs a `hub` resource.

    `pool` is the hub's concurrency pool: a check reads the hub, and DuckDB locks its file per process.
    """
    keys = keys_by_table or {}

    @dg.asset_check(
        asset=asset_key,
        additional_deps=[keys.get(t, dg.AssetKey(t.split("."))) for t in suite.depends_on],
        name=suite.name,
        description=f"Great Expectations suite {suite.name} on {suite.table}",
        blocking=True,
        required_resource_keys={"hub"},
        pool=pool,
    )
    def _suite_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        hub: HubResource = context.resources.hub
        with held_open(hub):
            references, rules = load_references(hub, suite), quality_rules()
            data = suite_data(hub, suite, references, rules)
            batch_id = hub.scalar(f"SELECT max(_batch_id) FROM {quoted(suite.table)}")
        # Validated with the hub closed: an embedded hub's cache of the blocks just read goes first
        # (the inventory entries suite's peak 45 MB lower at 705,000 rows).
        result = run_suite(suite, data, references, rules, run_name=context.run.run_id)
        record_validation(hub, result, context.run.run_id, None if batch_id is None else int(batch_id))
        context.log.info(result.summary())
        return suite_check_result(result, "database" if isinstance(data, HubTable) else "pandas")

    return _suite_check


def build_suite_checks(
    suites: Iterable[DatasetSuite],
    asset_keys_by_table: Mapping[str, AssetKeyLike] | None = None,
    pool: str | None = None,
) -> list[dg.AssetChecksDefinition]:
    """One check per suite; a table missing from the mapping maps `core.products` -> core/products."""
    keys = asset_keys_by_table or {}
    return [build_suite_check(s, keys.get(s.table, dg.AssetKey(s.table.split("."))), keys, pool) for s in suites]
