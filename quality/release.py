"""Release quarantined rows after a fix: re-validate them with the current rules and load those that pass.

`build_release_job(tables)` makes `quarantine_release_job`: for one dataset (op config `dataset`), every
row still waiting in `quality.quarantine` that a row rule refused is validated again with the row rules
of today's rules file. Rows that pass go to their table and get `released_at` in quarantine, in one
load; the others keep waiting. A released row never overwrites a newer one: versioned tables merge by
version, the others insert only keys they do not hold.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from quality.config import QualityRules, quality_rules
from quality.quarantine import QUARANTINE
from quality.rows import ROW_SUITES
from quality.validation import validate_rows
from resources.hub import HUB_POOL, HubResource, TableSpec, quoted


@dataclass(frozen=True)
class Release:
    dataset: str
    candidates: int
    released: int
    loaded: int  # released rows the merge wrote (a newer row of the same key wins)


class ReleaseConfig(dg.Config):
    """`dataset`: the hub table whose quarantined rows are re-validated, e.g. core.prices."""

    dataset: str


def release_spec(spec: TableSpec) -> TableSpec:
    """How released rows merge: by version when the table has one, else as new keys only."""
    if spec.version_column:
        return replace(spec, merge="upsert", parent_key=None)
    return replace(spec, merge="append", parent_key=None)


def waiting_rows(hub: HubResource, dataset: str) -> pd.DataFrame:
    """Quarantined rows of `dataset` a row rule refused and no release loaded yet."""
    if not hub.backend.table_exists(QUARANTINE.name):
        return pd.DataFrame(columns=QUARANTINE.column_names)
    columns = ", ".join(QUARANTINE.column_names)
    return hub.read_frame(
        f"SELECT {columns} FROM {quoted(QUARANTINE.name)} "
        "WHERE dataset = ? AND released_at IS NULL AND expectation IS NOT NULL ORDER BY quarantine_id",
        [dataset],
    )


def release_quarantined(hub: HubResource, spec: TableSpec, rules: QualityRules) -> Release:
    """Re-validate the waiting rows of `spec` with `rules`; load and mark those that pass, in one load."""
    suite = ROW_SUITES.get(spec.name)
    if suite is None:
        raise dg.Failure(f"{spec.name} has no row rules, so nothing of it is quarantined by a rule (dataset)")
    waiting = waiting_rows(hub, spec.name)
    records = [orjson.loads(r) for r in waiting["record"]]
    rows = spec.to_arrow({c: [r.get(c) for r in records] for c in spec.column_names})
    failures = validate_rows(suite, rows.to_pandas(), rules) if records else {}
    passing = [i for i in range(len(records)) if i not in failures]
    target = release_spec(spec)
    with hub.load(f"release:{spec.name}") as load:
        if passing:
            load.stage(target).append(rows.take(passing))
            released = waiting.iloc[passing].astype(object)
            released = released.where(released.notna(), None).assign(released_at=datetime.now(UTC))
            load.stage(QUARANTINE).append(
                QUARANTINE.to_arrow({c: released[c].tolist() for c in QUARANTINE.column_names})
            )
    changed = load.results.get(target.name)
    return Release(spec.name, len(records), len(passing), changed.rows_changed if changed else 0)


def build_release_job(tables: Sequence[TableSpec]) -> dg.JobDefinition:
    """`quarantine_release_job` over the conformed `tables` whose rows row rules can quarantine."""
    by_name = {t.name: t for t in tables if t.name in ROW_SUITES}

    @dg.op(name="release_quarantined_rows", pool=HUB_POOL)
    def release_op(context: dg.OpExecutionContext, config: ReleaseConfig, hub: HubResource) -> dg.Output[None]:
        spec = by_name.get(config.dataset)
        if spec is None:
            raise dg.Failure(f"op config 'dataset' is {config.dataset!r}; datasets with row rules: {sorted(by_name)}")
        outcome = release_quarantined(hub, spec, quality_rules())
        context.log.info(
            f"{spec.name}: {outcome.released} of {outcome.candidates} quarantined rows pass today's rules and "
            f"were released ({outcome.loaded} written; a newer row of the same key wins)"
        )
        return dg.Output(
            None, metadata={"candidates": outcome.candidates, "released": outcome.released, "loaded": outcome.loaded}
        )

    @dg.job(
        name="quarantine_release_job",
        description="Re-validate one dataset's quarantined rows with the current rules and load those that pass.",
    )
    def quarantine_release_job() -> None:
        release_op()

    return quarantine_release_job
