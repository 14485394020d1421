"""The Great Expectations 1.x bridge: validate a pandas frame against a dataset suite.

A `DatasetSuite` says which hub table to read, which columns name a failing row, which
reference lists to load (for "every sku exists in ..." checks) and how to build the GX
expectations from those lists. `run_suite` validates a frame with GX and turns the GX
result into a small, JSON-friendly `SuiteResult`.

One GX context serves the whole process (`_gx_context`); swapping it for a file-backed
context with Data Docs only touches that function.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations import expectations as gxe
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations import Expectation

MAX_FAILING_KEYS = 20
# In-set expectations with more values than this are checked via a membership column.
LARGE_VALUE_SET = 1_000
_DATASOURCE_NAME = "hub_frames"
_BATCH_DEFINITION_NAME = "whole_frame"
# Scalar expectation arguments worth showing in a label; collections (value sets) never are.
_LABEL_ARGS = ("min_value", "max_value", "strict_min", "strict_max", "or_equal", "regex", "mostly")

References = Mapping[str, Sequence[Any]]
ExpectationFactory = Callable[[References], list[Expectation]]

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class DatasetSuite:
    """Everything needed to validate one hub table.

    `name` is also the Dagster check name. `references` maps a name to SQL returning one
    column; `expectations` receives `{name: [values...]}` and returns fresh GX expectations.
    `depends_on` names the other tables the references read, so the check runs after them.
    """

    name: str
    table: str
    key_columns: tuple[str, ...]
    expectations: ExpectationFactory
    columns: tuple[str, ...] | None = None
    references: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.key_columns:
            raise ValueError(f"suite {self.name!r} needs at least one key column")

    @property
    def read_columns(self) -> tuple[str, ...] | None:
        """Columns to read: key columns first, then the rest; None means all columns."""
        if self.columns is None:
            return None
        return tuple(dict.fromkeys((*self.key_columns, *self.columns)))

    def select_sql(self) -> str:
        cols = "*" if self.read_columns is None else ", ".join(self.read_columns)
        return f"SELECT {cols} FROM {self.table}"


@dataclass(frozen=True)
class ExpectationOutcome:
    label: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    failing_keys: tuple[dict[str, Any], ...] = ()
    observed_value: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unexpected_count": self.unexpected_count}
        if self.unexpected_percent is not None:
            out["unexpected_percent"] = round(self.unexpected_percent, 4)
        if self.failing_keys:
            out["failing_keys"] = list(self.failing_keys)
        if self.observed_value is not None:
            out["observed_value"] = self.observed_value
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class SuiteResult:
    suite_name: str
    table: str
    success: bool
    rows_checked: int
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def failed(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    @property
    def passed_count(self) -> int:
        return len(self.outcomes) - len(self.failed)

    @property
    def pass_rate(self) -> float:
        return self.passed_count / len(self.outcomes) if self.outcomes else 1.0

    @property
    def unexpected_rows(self) -> int:
        """Sum of unexpected counts over failed expectations (a row may count more than once)."""
        return sum(o.unexpected_count or 0 for o in self.failed)

    def outcome(self, label: str) -> ExpectationOutcome:
        for o in self.outcomes:
            if o.label == label:
                return o
        raise KeyError(f"{label!r} not in {[o.label for o in self.outcomes]}")

    def summary(self) -> str:
        """One line for humans (Dagster check description, logs)."""
        total = len(self.outcomes)
        if self.success:
            return f"{self.suite_name}: all {total} expectations passed on {self.rows_checked} rows"
        labels = ", ".join(o.label for o in self.failed)
        return (
            f"{self.suite_name}: {len(self.failed)} of {total} expectations failed "
            f"on {self.rows_checked} rows: {labels}"
        )


# --- GX context -------------------------------------------------------------------------

_lock = threading.RLock()
_context: Any = None
_batch_definitions: dict[str, Any] = {}


def _gx_context() -> Any:
    """The process-wide GX context (in memory, no progress bars, no analytics)."""
    global _context
    if _context is None:
        _context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            ),
        )
    return _context


def _batch_definition(asset_name: str) -> Any:
    if asset_name not in _batch_definitions:
        sources = _gx_context().data_sources
        try:
            source = sources.get(_DATASOURCE_NAME)
        except KeyError:
            source = sources.add_pandas(_DATASOURCE_NAME)
        asset = source.add_dataframe_asset(asset_name)
        _batch_definitions[asset_name] = asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION_NAME)
    return _batch_definitions[asset_name]


# --- running a suite --------------------------------------------------------------------


def run_suite(suite: DatasetSuite, frame: pd.DataFrame, references: References | None = None) -> SuiteResult:
    """Validate `frame` against `suite`; `references` holds the value lists the suite asks for."""
    references = dict(references or {})
    missing = set(suite.references) - set(references)
    if missing:
        raise ValueError(f"suite {suite.name!r} needs references {sorted(missing)}")
    absent_keys = [c for c in suite.key_columns if c not in frame.columns]
    if absent_keys:
        raise ValueError(f"suite {suite.name!r}: key columns {absent_keys} not in the frame")

    declared = suite.expectations(references)
    labels = [_label_of(e) for e in declared]
    expectations, frame_to_check, renamed = _precompute_large_sets(declared, frame)
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": list(suite.key_columns),
        "partial_unexpected_count": MAX_FAILING_KEYS,
    }
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
    with _lock:  # GX contexts are not documented as thread safe; one validation at a time.
        batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": frame_to_check})
        validation = batch.validate(gx_suite, result_format=result_format)

    outcomes = [_outcome(r, suite.key_columns) for r in validation.results]
    outcomes = [replace(o, label=renamed.get(o.label, o.label)) for o in outcomes]
    # GX reorders results; report them in the order the suite declared them.
    position = {label: i for i, label in reversed(list(enumerate(labels)))}
    outcomes.sort(key=lambda o: position.get(o.label, len(position)))
    return SuiteResult(
        suite_name=suite.name,
        table=suite.table,
        success=bool(validation.success),
        rows_checked=len(frame),
        outcomes=_unique_labels(outcomes),
    )


def _precompute_large_sets(
    expectations: list[Expectation], frame: pd.DataFrame
) -> tuple[list[Expectation], pd.DataFrame, dict[str, str]]:
    """Swap "value in a large set" for a membership column computed once with pandas.

    GX re-serialises every expectation's arguments hundreds of times per run, so a
    175,000-value set costs ~12 s on 700,000 rows while the membership test itself takes
    well under a second. The helper column is True/False (NA where the value is null, so
    nulls are skipped as GX would), GX checks it against {True}, and the outcome keeps the
    original label, counts and failing keys.
    """
    swapped: list[Expectation] = []
    helpers: dict[str, pd.Series] = {}
    renamed: dict[str, str] = {}
    for e in expectations:
        values = getattr(e, "value_set", None)
        if not (
            isinstance(e, gxe.ExpectColumnValuesToBeInSet)
            and e.column in frame.columns
            and isinstance(values, (list, tuple, set, frozenset))
            and len(values) > LARGE_VALUE_SET
        ):
            swapped.append(e)
            continue
        column = frame[e.column]
        helper = f"__{e.column}_in_set_{len(helpers)}"
        helpers[helper] = column.isin(values).astype("boolean").mask(column.isna())
        stand_in = gxe.ExpectColumnValuesToBeInSet(column=helper, value_set=[True], mostly=e.mostly)
        renamed[_label_of(stand_in)] = _label_of(e)
        swapped.append(stand_in)
    return swapped, (frame.assign(**helpers) if helpers else frame), renamed


def _unique_labels(outcomes: list[ExpectationOutcome]) -> tuple[ExpectationOutcome, ...]:
    seen: dict[str, int] = {}
    unique = []
    for o in outcomes:
        seen[o.label] = seen.get(o.label, 0) + 1
        unique.append(o if seen[o.label] == 1 else replace(o, label=f"{o.label} #{seen[o.label]}"))
    return tuple(unique)


def expectation_label(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    """`expect_column_values_to_not_be_null(sku)`, `..._to_be_between(cent_amount, min_value=0)`."""
    args: list[str] = []
    if "column" in kwargs:
        args.append(str(kwargs["column"]))
    elif "column_list" in kwargs:
        args.extend(str(c) for c in kwargs["column_list"])
    elif "column_A" in kwargs:
        args.extend((str(kwargs["column_A"]), str(kwargs["column_B"])))
    for name in _LABEL_ARGS:
        value = kwargs.get(name)
        if value is not None and value is not False and not (name == "mostly" and value == 1):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            args.append(f"{name}={value}")
    return f"{expectation_type}({', '.join(args)})"


def _label_of(expectation: Expectation) -> str:
    names = ("column", "column_list", "column_A", "column_B", *_LABEL_ARGS)
    kwargs = {n: getattr(expectation, n) for n in names if getattr(expectation, n, None) is not None}
    return expectation_label(expectation.expectation_type, kwargs)


def _outcome(result: Any, key_columns: tuple[str, ...]) -> ExpectationOutcome:
    config = result.expectation_config
    details: Mapping[str, Any] = result.result or {}
    failing_keys: tuple[dict[str, Any], ...] = ()
    if not result.success:
        index_list = details.get("unexpected_index_list") or []
        failing_keys = tuple(
            {k: _plain(row.get(k)) for k in key_columns}
            for row in index_list[:MAX_FAILING_KEYS]
            if isinstance(row, Mapping)
        )
    count = details.get("unexpected_count")
    percent = details.get("unexpected_percent")
    return ExpectationOutcome(
        label=expectation_label(config.type, config.kwargs),
        success=bool(result.success),
        unexpected_count=None if count is None else int(count),
        unexpected_percent=None if percent is None else float(percent),
        failing_keys=failing_keys,
        observed_value=_plain(details.get("observed_value")),
        error=_exception_message(result.exception_info),
    )


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    # Metric failures come back keyed by metric id; one message is enough.
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return nested.get("exception_message")
    return None


def _plain(value: Any) -> Any:
    """Numpy/pandas scalars to JSON-friendly Python values; NaN/NA/NaT to None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return value
