"""The Great Expectations 1.x bridge: validate a pandas frame against a dataset suite.

A `DatasetSuite` says which hub table to read, which columns name a failing row, which
reference lists to load (for "every sku exists in ..." checks) and how to build the GX
expectations from those lists. Its `row_rules` are the expectations a single row can fail
on its own: they are part of the suite, and the loaders also apply them to every batch
before it merges (`validate_rows`), sending failing rows to quarantine. `run_suite`
validates a frame with GX and turns the GX result into a small, JSON-friendly `SuiteResult`.

A suite run with a `run_name` (a check) goes through a checkpoint in the file-backed GX
context under `<QUALITY_DIR>/gx` (see `quality/paths.py`), which stores the result and writes
its Data Docs page to the fixed site `<QUALITY_DIR>/gx/docs`. The project is opened once per process:
an unchanged suite's checkpoint is reused, and pages render with templates compiled once. Row rules and
plain runs use an in-memory context: nothing to keep, nothing written.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations import expectations as gxe
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import (
    SiteSectionIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.exceptions import ResourceFreshnessAggregateError
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations import Expectation
from great_expectations.render.renderer.site_builder import SiteBuilder

from quality.config import QualityRules
from quality.data_docs import make_offline
from quality.paths import data_docs_dir, docs_keep, gx_dir, quality_dir

MAX_FAILING_KEYS = 20
# In-set expectations with more values than this are checked via a membership column in a suite (the
# row rules check every set that way: there is no Data Docs page to keep readable).
LARGE_VALUE_SET = 1_000
# Uniqueness in a frame of more rows than this is checked via a helper column computed with Arrow: GX's
# check (pandas' `duplicated`) took 116 MB and 0.5 s for 705,000 inventory entry ids, Arrow a few MB.
LARGE_FRAME_ROWS = 100_000
_DATASOURCE_NAME = "hub_frames"
_BATCH_DEFINITION_NAME = "whole_frame"
DOCS_SITE = "hub"
# Relative to the GX project root, so the site is always <QUALITY_DIR>/gx/docs.
_DOCS_SITE_CONFIG = {
    "class_name": "SiteBuilder",
    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "docs/"},
}
# The Postgres hub reaches GX through an environment variable named here: the GX project files keep
# data source definitions, and must never hold a password.
_POSTGRES_ENV_PREFIX = "HUB_GX_POSTGRES_URL_"
_WHOLE_TABLE = "whole_table"
# The row-position column `validate_rows` adds so a failing row is found even when its key is null.
ROW_POSITION = "__row"
# Scalar expectation arguments worth showing in a label; collections (value sets) never are.
_LABEL_ARGS = ("min_value", "max_value", "strict_min", "strict_max", "or_equal", "regex", "mostly")

References = Mapping[str, Sequence[Any]]
ExpectationFactory = Callable[[References], list[Expectation]]
RowRules = Callable[[QualityRules], list[Expectation]]

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)

# GX fingerprints every pandas batch smaller than `HASH_THRESHOLD` bytes (1 GB) by hashing it whole,
# twice per validation, for a batch marker its Data Docs pages show: 1.7 s and about 100 MB more at
# peak for the 705,000 inventory entries of a 50,000-product catalog, and half the time of a row-rule
# validation of 50,000 prices. No batch is fingerprinted; nothing here reads the marker.
FINGERPRINTED_BYTES = 0
if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
    raise ImportError("great_expectations has no pandas_execution_engine.HASH_THRESHOLD any more")
pandas_execution_engine.HASH_THRESHOLD = FINGERPRINTED_BYTES


@dataclass(frozen=True)
class DatasetSuite:
    """Everything needed to validate one hub table.

    `name` is also the Dagster check name. `references` maps a name to SQL returning one
    column; `expectations` receives `{name: [values...]}` and returns fresh GX expectations.
    `depends_on` names the other tables the references read, so the check runs after them.
    `row_rules` returns the per-row expectations (no references, no whole-table rules); they
    run with the suite and on every batch before it merges.
    """

    name: str
    table: str
    key_columns: tuple[str, ...]
    expectations: ExpectationFactory
    columns: tuple[str, ...] | None = None
    references: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    row_rules: RowRules | None = None

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

    def rows(self, rules: QualityRules) -> list[Expectation]:
        """The row-level expectations under `rules` (empty when the suite has none)."""
        return self.row_rules(rules) if self.row_rules else []

    def row_columns(self, rules: QualityRules) -> list[str]:
        """The key columns and every column a row rule reads: all `validate_rows` needs."""
        ruled = [getattr(e, name, None) for e in self.rows(rules) for name in ("column", "column_A", "column_B")]
        return list(dict.fromkeys([*self.key_columns, *(c for c in ruled if c)]))


@dataclass(frozen=True)
class ExpectationOutcome:
    label: str
    success: bool
    column: str | None = None
    element_count: int | None = None
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
    data_docs_path: str | None = None  # the validation's Data Docs page, relative to QUALITY_DIR

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


@dataclass(frozen=True)
class HubTable:
    """A table GX validates where it lives, through SQL (the Postgres hub), instead of a frame in pandas.

    `connection_string` is a SQLAlchemy URL (`postgresql+psycopg2://...`); `rows` is the table's size.
    """

    connection_string: str
    name: str
    rows: int

    @property
    def source_name(self) -> str:
        """One GX data source per database; named by a hash, so no part of the URL is written down."""
        return "hub_postgres_" + hashlib.sha256(self.connection_string.encode()).hexdigest()[:12]


# --- GX context -------------------------------------------------------------------------

_lock = threading.RLock()
_memory: Any = None


@dataclass
class _Project:
    """The file-backed GX project of one QUALITY_DIR, opened once per process.

    `site` is the docs site's builder, kept so its page templates compile once; `checkpoints` maps a
    suite to the fingerprint of what was last saved for it and the saved checkpoint.
    """

    context: Any
    site: SiteBuilder
    checkpoints: dict[str, tuple[str, Any]] = field(default_factory=dict)
    static_copied: bool = False


_projects: dict[Path, _Project] = {}


def _memory_context() -> Any:
    """The in-memory GX context for validations without Data Docs (row rules, plain suite runs)."""
    global _memory
    if _memory is None:
        _memory = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            ),
        )
    return _memory


def _project() -> _Project:
    """The GX project of the current QUALITY_DIR, with the docs site `hub` (no progress bars).

    The project keeps no config variables file: GX would parse it again on every configuration lookup
    (a few hundred per check run). Connection strings come from the environment (`HubTable`).
    """
    root = gx_dir().resolve()
    if root not in _projects or not (root / "great_expectations.yml").is_file():
        context = gx.get_context(mode="file", project_root_dir=str(root.parent))
        variables = context.variables
        wanted_bars = {"globally": False, "metric_calculations": False}
        if (
            variables.progress_bars != wanted_bars
            or variables.data_docs_sites != {DOCS_SITE: _DOCS_SITE_CONFIG}
            or variables.config_variables_file_path is not None
        ):
            variables.progress_bars = wanted_bars
            variables.analytics_enabled = False
            variables.data_docs_sites = {DOCS_SITE: _DOCS_SITE_CONFIG}
            variables.config_variables_file_path = None
            variables.save()
            context = gx.get_context(mode="file", project_root_dir=str(root.parent))
        site_config = {k: v for k, v in _DOCS_SITE_CONFIG.items() if k != "class_name"}
        site = SiteBuilder(
            data_context=context,
            site_name=DOCS_SITE,
            runtime_environment={"root_directory": context.root_directory},
            **site_config,
        )
        _projects[root] = _Project(context, site)
    return _projects[root]


@contextmanager
def _file_lock() -> Iterator[None]:
    """One writer of the GX project at a time, across processes (checks may run in parallel on Postgres)."""
    gx_dir().mkdir(parents=True, exist_ok=True)
    with open(gx_dir() / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_data_docs_index(keep: int | None = None) -> Path:
    """Prune, then rebuild the Data Docs index page (lists every stored validation) and the suite pages;
    returns its path.

    Each suite keeps its newest `keep` validations (default `QUALITY_DOCS_KEEP`), results and pages: the
    index re-reads every stored validation, so without a bound it grows with every run, as the disk does.
    A validation's page is rendered once, by its check: here only pages still missing are rendered (a
    check that stopped between storing its result and rendering it), not every page again (about 20 ms
    each, seconds once history grows).
    """
    keep = docs_keep() if keep is None else keep
    with _lock, _file_lock():
        project = _project()
        context, pages = project.context, project.site.target_store.store_backends[ValidationResultIdentifier]
        pruned = _prune_validations(context.validation_results_store, pages, keep)
        if pruned:
            log.info("Data Docs: %d validation(s) beyond the newest %d of their suite pruned", pruned, keep)
        rendered = {ValidationResultIdentifier.from_tuple(key) for key in pages.list_keys()}
        unrendered = set(context.validation_results_store.list_keys()) - rendered
        suites = context.expectations_store.list_keys()
        # An empty list would render every page: with no suite there is no validation either.
        if suites:
            project.site.build(resource_identifiers=[*suites, *unrendered], build_index=True)
        else:
            project.site.build(build_index=True)
        make_offline(data_docs_dir())
    return data_docs_dir() / "index.html"


def _prune_validations(results: Any, pages: Any, keep: int) -> int:
    """Remove each suite's stored validations, and their pages, beyond its newest `keep`; returns how many."""
    by_suite: dict[str, list[ValidationResultIdentifier]] = {}
    for key in results.list_keys():
        by_suite.setdefault(key.expectation_suite_identifier.name, []).append(key)
    pruned = 0
    for keys in by_suite.values():
        keys.sort(key=lambda k: (k.run_id.run_time, k.run_id.run_name or ""), reverse=True)
        for key in keys[keep:]:
            results.remove_key(key)
            pages.remove_key(key.to_tuple())
            pruned += 1
    if pruned:  # GX means to remove the folders it leaves empty, but its test of emptiness is always false
        for backend in (results.store_backend, pages):
            _remove_empty_folders(Path(backend.full_base_directory))
    return pruned


def _remove_empty_folders(root: Path) -> None:
    """Remove every empty folder under `root` (not `root` itself), deepest first."""
    for folder, _, _ in os.walk(root, topdown=False):
        if folder != str(root) and not any(Path(folder).iterdir()):
            Path(folder).rmdir()


def _batch_definition(context: Any, asset_name: str) -> Any:
    sources = context.data_sources
    try:
        source = sources.get(_DATASOURCE_NAME)
    except KeyError:
        source = sources.add_pandas(_DATASOURCE_NAME)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(_BATCH_DEFINITION_NAME)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION_NAME)


def _connection_variable(table: HubTable) -> str:
    """Put `table`'s connection string in the environment variable its GX data source names; returns the name."""
    variable = _POSTGRES_ENV_PREFIX + table.source_name.rsplit("_", 1)[1]
    os.environ[variable] = table.connection_string
    return variable


def _table_batch_definition(context: Any, table: HubTable) -> Any:
    """The whole-table batch of `table` in its Postgres data source (created on first use)."""
    variable = _connection_variable(table)
    try:
        source = context.data_sources.get(table.source_name)
    except KeyError:
        source = context.data_sources.add_postgres(table.source_name, connection_string="${" + variable + "}")
    schema, name = table.name.split(".")
    asset_name = f"{schema}__{name}"
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_table_asset(asset_name, table_name=name, schema_name=schema)
    try:
        return asset.get_batch_definition(_WHOLE_TABLE)
    except KeyError:
        return asset.add_batch_definition_whole_table(_WHOLE_TABLE)


def _batch_for(context: Any, name: str, data: pd.DataFrame | HubTable) -> tuple[Any, dict | None]:
    """The batch definition and batch parameters that hand `data` to GX."""
    if isinstance(data, HubTable):
        return _table_batch_definition(context, data), None
    return _batch_definition(context, name), {"dataframe": data}


def _checkpoint(
    project: _Project, gx_suite: gx.ExpectationSuite, data: pd.DataFrame | HubTable, result_format: dict
) -> Any:
    """The saved checkpoint that validates `gx_suite` on `data`; suite, validation definition and checkpoint
    are saved again only when this process last saved them differently (each save reads, compares and
    writes all three)."""
    where = [data.source_name, data.name] if isinstance(data, HubTable) else "dataframe"
    described = json.dumps([gx_suite.to_json_dict(), where, result_format], sort_keys=True, default=str)
    fingerprint = hashlib.sha256(described.encode()).hexdigest()
    saved = project.checkpoints.get(gx_suite.name)
    if saved is not None and saved[0] == fingerprint:
        return saved[1]
    context = project.context
    suite = context.suites.add_or_update(gx_suite)
    batch_definition, _ = _batch_for(context, gx_suite.name, data)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=gx_suite.name, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(name=gx_suite.name, validation_definitions=[definition], actions=[], result_format=result_format)
    )
    project.checkpoints[gx_suite.name] = (fingerprint, checkpoint)
    return checkpoint


def _write_page(project: _Project, identifier: ValidationResultIdentifier) -> None:
    """Render the stored validation's Data Docs page, as GX's site builder does, with templates compiled once.

    The index re-reads every stored validation (seconds once history grows), so it is built here only when
    missing and otherwise by `build_data_docs_index`. A page GX fails to render is logged, as GX does.
    """
    if not (data_docs_dir() / "index.html").exists():
        project.site.build(resource_identifiers=[identifier], build_index=True)
        project.static_copied = True
        return
    if not project.static_copied:
        project.site.target_store.copy_static_assets()
        project.static_copied = True
    section = project.site.site_section_builders["validations"]
    try:
        rendered = section.renderer_class.render(project.context.validation_results_store.get(identifier))
        page = section.view_class.render(
            rendered, data_context_id=section.data_context_id, show_how_to_buttons=section.show_how_to_buttons
        )
    except Exception:
        log.exception("Data Docs: the page of %s could not be rendered", identifier.to_tuple())
        return
    project.site.target_store.set(
        SiteSectionIdentifier(site_section_name="validations", resource_identifier=identifier), page
    )


def _validate_with_docs(
    gx_suite: gx.ExpectationSuite, data: pd.DataFrame | HubTable, result_format: dict, run_name: str
) -> tuple[Any, str | None]:
    """Validate through the suite's checkpoint in the file context, then render the result's Data Docs page."""
    if isinstance(data, HubTable):
        _connection_variable(data)
    batch_parameters = None if isinstance(data, HubTable) else {"dataframe": data}
    run_id = RunIdentifier(run_name=run_name)
    with _file_lock():
        project = _project()
        try:
            checkpoint = _checkpoint(project, gx_suite, data, result_format)
            result = checkpoint.run(batch_parameters=batch_parameters, run_id=run_id)
        except ResourceFreshnessAggregateError:
            # Another process saved this suite differently since: save ours again.
            project.checkpoints.pop(gx_suite.name, None)
            checkpoint = _checkpoint(project, gx_suite, data, result_format)
            result = checkpoint.run(batch_parameters=batch_parameters, run_id=run_id)
        [(identifier, validation)] = result.run_results.items()
        _write_page(project, identifier)
        make_offline(data_docs_dir())
    page = data_docs_dir() / "validations" / Path(*identifier.to_tuple()).with_suffix(".html")
    return validation, (page.relative_to(quality_dir()).as_posix() if page.exists() else None)


# --- running a suite --------------------------------------------------------------------


def run_suite(
    suite: DatasetSuite,
    data: pd.DataFrame | HubTable,
    references: References | None = None,
    rules: QualityRules | None = None,
    run_name: str | None = None,
) -> SuiteResult:
    """Validate `data` (a frame, or a table GX reads in the database) against `suite`.

    `references` holds the value lists the suite asks for; `rules` shape the row rules (default: the
    built-in defaults). With a `run_name` (the Dagster run id) the validation also writes its Data Docs page.
    """
    references = dict(references or {})
    missing = set(suite.references) - set(references)
    if missing:
        raise ValueError(f"suite {suite.name!r} needs references {sorted(missing)}")
    absent_keys = [] if isinstance(data, HubTable) else [c for c in suite.key_columns if c not in data.columns]
    if absent_keys:
        raise ValueError(f"suite {suite.name!r}: key columns {absent_keys} not in the frame")

    declared = [*suite.expectations(references), *suite.rows(rules or QualityRules())]
    labels = [_label_of(e) for e in declared]
    if isinstance(data, HubTable):
        if has_large_sets(declared):
            raise ValueError(f"suite {suite.name!r} has value sets too large to validate in the database")
        expectations, data_to_check, renamed = declared, data, {}
    else:
        uniqueness = len(data) > LARGE_FRAME_ROWS
        expectations, data_to_check, renamed = _precompute(declared, _widened(data), uniqueness=uniqueness)
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": list(suite.key_columns),
        "partial_unexpected_count": MAX_FAILING_KEYS,
    }
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
    docs_path = None
    with _lock:  # GX contexts are not documented as thread safe; one validation at a time.
        if run_name is None:
            batch_definition, batch_parameters = _batch_for(_memory_context(), suite.name, data_to_check)
            batch = batch_definition.get_batch(batch_parameters=batch_parameters)
            validation = batch.validate(gx_suite, result_format=result_format)
        else:
            validation, docs_path = _validate_with_docs(gx_suite, data_to_check, result_format, run_name)

    outcomes = [_outcome(r, suite.key_columns) for r in validation.results]
    outcomes = [replace(o, label=renamed.get(o.label, o.label), column=_source_column(o.column)) for o in outcomes]
    # GX reorders results; report them in the order the suite declared them.
    position = {label: i for i, label in reversed(list(enumerate(labels)))}
    outcomes.sort(key=lambda o: position.get(o.label, len(position)))
    return SuiteResult(
        suite_name=suite.name,
        table=suite.table,
        success=bool(validation.success),
        rows_checked=data.rows if isinstance(data, HubTable) else len(data),
        outcomes=_unique_labels(outcomes),
        data_docs_path=docs_path,
    )


def validate_rows(
    suite: DatasetSuite, frame: pd.DataFrame, rules: QualityRules
) -> dict[int, list[tuple[str, str | None]]]:
    """The suite's row rules on `frame` in one GX validation: failing row position -> [(label, column)].

    Failing rows are found through GX's complete result (`unexpected_index_list`) with the table
    key and the row position as index columns. A rule GX cannot evaluate raises, naming it.
    """
    expectations = suite.rows(rules)
    if not expectations or frame.empty:
        return {}
    positioned = frame.assign(**{ROW_POSITION: range(len(frame))}).reset_index(drop=True)
    # Even ISO 4217's 180 codes cost GX about 60 ms per validation to re-serialise (the prices rules 113 -> 49 ms).
    swapped, to_check, renamed = _precompute(expectations, _widened(positioned), sets_larger_than=0)
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [*suite.key_columns, ROW_POSITION],
        "partial_unexpected_count": 0,
    }
    gx_suite = gx.ExpectationSuite(name=f"{suite.name}_rows", expectations=swapped)
    with _lock:
        batch = _batch_definition(_memory_context(), gx_suite.name).get_batch(batch_parameters={"dataframe": to_check})
        validation = batch.validate(gx_suite, result_format=result_format)
    failures: dict[int, list[tuple[str, str | None]]] = {}
    for result in validation.results:
        kwargs = result.expectation_config.kwargs
        label = expectation_label(result.expectation_config.type, kwargs)
        label, column = renamed.get(label, label), _source_column(kwargs.get("column"))
        error = _exception_message(result.exception_info)
        if error:
            raise ValueError(f"row rule {label} of {suite.name} cannot be evaluated on {suite.table}: {error}")
        if result.success:
            continue
        for row in (result.result or {}).get("unexpected_index_list") or []:
            failures.setdefault(int(row[ROW_POSITION]), []).append((label, column))
    return failures


_HELPER_INFIXES = ("_in_set_", "_is_unique_")


def _source_column(column: str | None) -> str | None:
    """The checked column behind a helper column (`__sku_in_set_0` -> `sku`, `__id_is_unique_0` -> `id`)."""
    if column and column.startswith("__"):
        for infix in _HELPER_INFIXES:
            if infix in column:
                return column[2:].rsplit(infix, 1)[0]
    return column


def _is_large_set(e: Expectation, larger_than: int = LARGE_VALUE_SET) -> bool:
    values = getattr(e, "value_set", None)
    return (
        isinstance(e, gxe.ExpectColumnValuesToBeInSet)
        and isinstance(values, (list, tuple, set, frozenset))
        and len(values) > larger_than
    )


def has_large_sets(expectations: Sequence[Expectation]) -> bool:
    """Whether any expectation checks membership in a set too large to send to a database as a literal."""
    return any(_is_large_set(e) for e in expectations)


def _widened(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its numpy integers narrower than 64 bits as int64 (the same values).

    GX compares int64 and float64 columns at once, any other dtype one Python call per value
    (`column_values.between`): 105,000 INTEGER fraction digits took 0.15 s more than as BIGINT.
    """
    narrow = {
        name: "int64"
        for name, dtype in frame.dtypes.items()
        if isinstance(dtype, np.dtype) and dtype.kind in "iu" and dtype.itemsize < 8
    }
    return frame.astype(narrow) if narrow else frame


def _precompute(
    expectations: list[Expectation],
    frame: pd.DataFrame,
    sets_larger_than: int = LARGE_VALUE_SET,
    uniqueness: bool = False,
) -> tuple[list[Expectation], pd.DataFrame, dict[str, str]]:
    """Swap costly GX checks for boolean helper columns computed once with Arrow, which GX checks against {True}.

    "Value in a set of more than `sets_larger_than` values": GX re-serialises every expectation's
    arguments hundreds of times per run, so a 175,000-value set cost ~12 s on 700,000 rows, the
    membership test well under a second. With `uniqueness`, "values are unique": GX's check (pandas'
    `duplicated`) took 116 MB and 0.5 s for 705,000 ids. A helper is NA where the value is null, so
    nulls are skipped as GX skips them; the outcome keeps the original label, counts and failing keys.
    """
    swapped: list[Expectation] = []
    helpers: dict[str, pd.Series] = {}
    renamed: dict[str, str] = {}
    for e in expectations:
        column = frame[e.column] if getattr(e, "column", None) in frame.columns else None
        if column is not None and _is_large_set(e, sets_larger_than):
            helper, values = f"__{e.column}_in_set_{len(helpers)}", _membership(column, e.value_set)
        elif column is not None and uniqueness and isinstance(e, gxe.ExpectColumnValuesToBeUnique):
            helper, values = f"__{e.column}_is_unique_{len(helpers)}", _uniqueness(column)
        else:
            swapped.append(e)
            continue
        helpers[helper] = values
        stand_in = gxe.ExpectColumnValuesToBeInSet(column=helper, value_set=[True], mostly=e.mostly)
        renamed[_label_of(stand_in)] = _label_of(e)
        swapped.append(stand_in)
    return swapped, (frame.assign(**helpers) if helpers else frame), renamed


def _membership(column: pd.Series, values: Sequence[Any]) -> pd.Series:
    """Whether each value of `column` is in `values`: True/False, NA where the value is null.

    Arrow's `is_in` on the column's own type: 0.13 s for 700,000 SKUs against 175,000, where pandas'
    `isin` on Arrow strings takes 0.8 s. Types Arrow cannot match fall back to `isin`.
    """
    try:
        array = pa.array(column, from_pandas=True)
        present = pc.is_in(array, value_set=pa.array(list(values), type=array.type)).to_numpy(zero_copy_only=False)
        member = pd.Series(pd.array(present, dtype="boolean"), index=column.index)
    except (pa.ArrowException, TypeError, ValueError):
        member = column.isin(values).astype("boolean")
    return member.mask(column.isna())


def _uniqueness(column: pd.Series) -> pd.Series:
    """Whether each value of `column` occurs only once in it: True/False, NA where the value is null."""
    try:
        array = pa.array(column, from_pandas=True)
        counts = pc.value_counts(array)
        repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        present = pc.is_in(array, value_set=repeated).to_numpy(zero_copy_only=False)
        unique = pd.Series(pd.array(~present, dtype="boolean"), index=column.index)
    except (pa.ArrowException, TypeError, ValueError):
        unique = (~column.duplicated(keep=False)).astype("boolean")
    return unique.mask(column.isna())


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
    elements = details.get("element_count")
    return ExpectationOutcome(
        label=expectation_label(config.type, config.kwargs),
        success=bool(result.success),
        column=config.kwargs.get("column") or config.kwargs.get("column_A"),
        element_count=None if elements is None else int(elements),
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
