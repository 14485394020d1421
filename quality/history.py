"""Validation history: `quality.validation_runs`, one row per expectation per suite check run.

The quality report (`quality/report.py`) reads this table; its columns and names are a contract.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from quality.validation import SuiteResult
from resources.hub import HubResource, TableSpec

VALIDATION_RUNS = TableSpec(
    "quality.validation_runs",
    (
        ("run_id", "text"),
        ("dataset", "text"),
        ("table_name", "text"),
        ("batch_id", "bigint"),
        ("expectation", "text"),
        ("column_name", "text"),
        ("success", "bool"),
        ("observed_value", "text"),
        ("unexpected_count", "bigint"),
        ("element_count", "bigint"),
        ("validated_at", "timestamp"),
        ("data_docs_path", "text"),
    ),
    ("run_id", "dataset", "expectation"),
    merge="append",
    description="One row per expectation per suite check run: outcome, counts and the Data Docs page.",
    column_descriptions={
        "dataset": "The suite (and Dagster check) name, e.g. prices_suite.",
        "table_name": "The hub table validated.",
        "batch_id": "The newest _batch_id in the table when it was validated.",
        "expectation": "The expectation's label, e.g. expect_column_values_to_be_between(cent_amount, min_value=0).",
        "observed_value": "GX's observed value, as JSON.",
        "data_docs_path": "The validation's Great Expectations Data Docs page, relative to QUALITY_DIR.",
    },
)


def record_validation(hub: HubResource, result: SuiteResult, run_id: str, batch_id: int | None) -> None:
    """Append the outcome of every expectation of `result` to `quality.validation_runs`, in one load."""
    at = datetime.now(UTC)
    outcomes = result.outcomes
    n = len(outcomes)
    rows = VALIDATION_RUNS.to_arrow(
        {
            "run_id": [run_id] * n,
            "dataset": [result.suite_name] * n,
            "table_name": [result.table] * n,
            "batch_id": [batch_id] * n,
            "expectation": [o.label for o in outcomes],
            "column_name": [o.column for o in outcomes],
            "success": [o.success for o in outcomes],
            "observed_value": [
                None if o.observed_value is None else orjson.dumps(o.observed_value).decode() for o in outcomes
            ],
            "unexpected_count": [o.unexpected_count for o in outcomes],
            "element_count": [
                o.element_count if o.element_count is not None else result.rows_checked for o in outcomes
            ],
            "validated_at": [at] * n,
            "data_docs_path": [result.data_docs_path] * n,
        }
    )
    with hub.load(f"validation:{result.suite_name}") as load:
        load.stage(VALIDATION_RUNS).append(rows)
