"""Turn a `DatasetSuite` into a blocking Dagster asset check.

The check reads the table and its reference lists through the `hub` resource (anything with
`read_frame(sql) -> pandas.DataFrame`), runs the suite with Great Expectations and reports
an `AssetCheckResult`. Blocking: a failed suite stops assets downstream of the checked one.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import dagster as dg
import pandas as pd

from quality.validation import DatasetSuite, SuiteResult, run_suite

AssetKeyLike = dg.AssetKey | str | Sequence[str]


class FrameReader(Protocol):
    """What a check needs from the hub resource."""

    def read_frame(self, sql: str) -> pd.DataFrame: ...


def load_references(hub: FrameReader, suite: DatasetSuite) -> dict[str, list[Any]]:
    """Run each reference query; its first column, nulls dropped, becomes the value list."""
    refs: dict[str, list[Any]] = {}
    for name, sql in suite.references.items():
        frame = hub.read_frame(sql)
        refs[name] = frame.iloc[:, 0].dropna().tolist() if frame.shape[1] else []
    return refs


def suite_check_result(result: SuiteResult) -> dg.AssetCheckResult:
    """The Dagster view of a suite run: counts, pass rate and one entry per failed expectation."""
    metadata: dict[str, Any] = {
        "rows_checked": dg.MetadataValue.int(result.rows_checked),
        "expectations_passed": dg.MetadataValue.int(result.passed_count),
        "expectations_failed": dg.MetadataValue.int(len(result.failed)),
        "pass_rate": dg.MetadataValue.float(float(result.pass_rate)),
        "unexpected_rows": dg.MetadataValue.int(result.unexpected_rows),
    }
    for outcome in result.failed:
        metadata[f"failed: {outcome.label}"] = dg.MetadataValue.json(outcome.as_dict())
    return dg.AssetCheckResult(
        passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.summary(),
        metadata=metadata,
    )


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
        hub: FrameReader = context.resources.hub
        frame = hub.read_frame(suite.select_sql())
        result = run_suite(suite, frame, load_references(hub, suite))
        context.log.info(result.summary())
        return suite_check_result(result)

    return _suite_check


def build_suite_checks(
    suites: Iterable[DatasetSuite],
    asset_keys_by_table: Mapping[str, AssetKeyLike] | None = None,
    pool: str | None = None,
) -> list[dg.AssetChecksDefinition]:
    """One check per suite; a table missing from the mapping maps `core.products` -> core/products."""
    keys = asset_keys_by_table or {}
    return [build_suite_check(s, keys.get(s.table, dg.AssetKey(s.table.split("."))), keys, pool) for s in suites]
