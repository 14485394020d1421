"""The data-quality report: one static page, `<quality dir>/index.html`, built from the hub.

It reads `quality.validation_runs` (one row per expectation per check run), `quality.quarantine` and
`ops.batches`, and shows per dataset the latest status, a pass-rate sparkline, quarantined rows and
freshness; charts of pass rate and quarantine volume over the last runs; and links into the Great
Expectations Data Docs page of each validation. The page is self-contained (inline CSS and SVG, no
scripts, nothing fetched), so it opens from a file or any static host.

`python -m quality.report` (and `make report`) rebuilds it from the hub in `HUB_URL` and prints its path.
"""

import html
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from quality.paths import gx_dir, quality_dir
from quality.validation import build_data_docs_index
from resources.hub import HUB_POOL, Hub, HubError, HubResource

RECENT_RUNS = 30  # runs in the charts and the sparklines (Data Docs keep as many per suite: quality/paths.py)
RECENT_VALIDATIONS = 60  # rows in the "recent validations" table
DATA_DOCS_INDEX = "gx/docs/index.html"  # relative to the quality dir
VALIDATION_RUNS = "quality.validation_runs"
QUARANTINE = "quality.quarantine"


@dataclass(frozen=True)
class Validation:
    """One check run of one dataset: its expectations' outcome and its Data Docs page."""

    run_id: str
    dataset: str
    table_name: str
    validated_at: datetime
    expectations: int
    passed: int
    data_docs_path: str | None

    @property
    def success(self) -> bool:
        return self.passed == self.expectations

    @property
    def pass_rate(self) -> float:
        return self.passed / self.expectations if self.expectations else 1.0


@dataclass(frozen=True)
class DatasetStatus:
    """A row of the report's table: a dataset (check) and how it stands now."""

    dataset: str
    table_name: str
    latest: Validation | None  # None: quarantined rows but no validation yet
    failed_expectations: tuple[str, ...]
    pass_rates: tuple[float, ...]  # the last runs, oldest first
    quarantined: int
    last_loaded_at: datetime | None


@dataclass(frozen=True)
class RunPoint:
    """One Dagster run that validated something: its pass rate, and the rows quarantined since the run before."""

    run_id: str
    validated_at: datetime
    expectations: int
    passed: int
    quarantined: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.expectations if self.expectations else 1.0


@dataclass(frozen=True)
class QualitySummary:
    generated_at: datetime
    hub: str
    datasets: tuple[DatasetStatus, ...]
    runs: tuple[RunPoint, ...]  # oldest first
    validations: tuple[Validation, ...]  # newest first


# --- reading the hub --------------------------------------------------------------------


def read_summary(hub: Hub, now: datetime | None = None, pages_in: Path | None = None) -> QualitySummary:
    """Everything the page shows, read from the hub; missing quality tables read as empty.

    With `pages_in` (the folder the page links from), a Data Docs page no longer there is not linked.
    """
    now = now or datetime.now(UTC)
    validations = _read_validations(hub, pages_in) if hub.table_exists(VALIDATION_RUNS) else []
    runs = _read_runs(hub) if validations else []
    by_dataset: dict[str, list[Validation]] = {}
    for v in sorted(validations, key=lambda v: v.validated_at):
        by_dataset.setdefault(v.dataset, []).append(v)
    failed = _failed_expectations(hub, [h[-1] for h in by_dataset.values() if not h[-1].success])
    quarantined = _quarantine_counts(hub)

    rows = []
    for name, history in by_dataset.items():
        last = history[-1]
        rows.append(
            DatasetStatus(
                dataset=name,
                table_name=last.table_name,
                latest=last,
                failed_expectations=failed.get((last.run_id, name), ()),
                pass_rates=tuple(v.pass_rate for v in history),
                quarantined=quarantined.pop(last.table_name, 0),
                last_loaded_at=_last_load(hub, last.table_name),
            )
        )
    # Quarantined rows of a table that no check validates still show: nothing is hidden.
    rows += [
        DatasetStatus(table, table, None, (), (), count, _last_load(hub, table)) for table, count in quarantined.items()
    ]
    rows.sort(key=lambda r: (_rank(r), r.dataset))
    return QualitySummary(
        generated_at=now,
        hub=hub.url_for_humans,
        datasets=tuple(rows),
        runs=tuple(runs),
        validations=tuple(sorted(validations, key=lambda v: (v.validated_at, v.dataset), reverse=True))[
            :RECENT_VALIDATIONS
        ],
    )


def _rank(row: DatasetStatus) -> int:
    """Failing datasets first, then those without a check, then passing ones."""
    if row.latest is None:
        return 1
    return 2 if row.latest.success else 0


def _read_validations(hub: Hub, pages_in: Path | None) -> list[Validation]:
    """The last `RECENT_RUNS` validations of each dataset, one per (run, dataset)."""
    frame = hub.read_frame(
        f"""WITH per_run AS (
              SELECT run_id, dataset, max(table_name) AS table_name, max(validated_at) AS validated_at,
                     count(*) AS expectations, sum(CASE WHEN success THEN 1 ELSE 0 END) AS passed,
                     max(data_docs_path) AS data_docs_path
              FROM {VALIDATION_RUNS} GROUP BY run_id, dataset),
            ranked AS (
              SELECT *, row_number() OVER (PARTITION BY dataset ORDER BY validated_at DESC, run_id DESC) AS n
              FROM per_run)
            SELECT run_id, dataset, table_name, validated_at, expectations, passed, data_docs_path
            FROM ranked WHERE n <= ? ORDER BY validated_at""",
        [RECENT_RUNS],
    )
    return [
        Validation(
            run_id=str(r.run_id),
            dataset=str(r.dataset),
            table_name=str(r.table_name),
            validated_at=_utc(r.validated_at),
            expectations=int(r.expectations),
            passed=int(r.passed),
            data_docs_path=_kept_page(r.data_docs_path, pages_in),
        )
        for r in frame.itertuples(index=False)
    ]


def _kept_page(path: object, pages_in: Path | None) -> str | None:
    """The validation's Data Docs page, unless it is no longer under `pages_in` (Data Docs keep `QUALITY_DOCS_KEEP`
    validations per suite)."""
    if pd.isna(path) or (pages_in is not None and not (pages_in / str(path)).is_file()):
        return None
    return str(path)


def _read_runs(hub: Hub) -> list[RunPoint]:
    """The last `RECENT_RUNS` runs, oldest first, with the rows quarantined since the run before."""
    frame = hub.read_frame(
        f"""SELECT run_id, max(validated_at) AS validated_at, count(*) AS expectations,
                   sum(CASE WHEN success THEN 1 ELSE 0 END) AS passed
            FROM {VALIDATION_RUNS} GROUP BY run_id ORDER BY validated_at DESC, run_id DESC LIMIT ?""",
        [RECENT_RUNS + 1],
    )
    runs = list(frame.itertuples(index=False))[::-1]
    has_quarantine = hub.table_exists(QUARANTINE)
    points = []
    for before, run in zip([None, *runs], runs, strict=False):
        if before is None and len(runs) > RECENT_RUNS:
            continue  # the extra, older run only bounds the first window
        quarantined = 0
        if has_quarantine:
            since = "" if before is None else " AND quarantined_at > ?"
            params = [_utc(run.validated_at)] + ([] if before is None else [_utc(before.validated_at)])
            quarantined = int(hub.scalar(f"SELECT count(*) FROM {QUARANTINE} WHERE quarantined_at <= ?{since}", params))
        points.append(
            RunPoint(str(run.run_id), _utc(run.validated_at), int(run.expectations), int(run.passed), quarantined)
        )
    return points


def _failed_expectations(hub: Hub, validations: Sequence[Validation]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(run, dataset) -> the labels of its failed expectations, with their unexpected counts."""
    if not validations:
        return {}
    run_ids = sorted({v.run_id for v in validations})
    frame = hub.read_frame(
        f"""SELECT run_id, dataset, expectation, unexpected_count FROM {VALIDATION_RUNS}
            WHERE NOT success AND run_id IN ({", ".join("?" * len(run_ids))}) ORDER BY expectation""",
        run_ids,
    )
    failed: dict[tuple[str, str], tuple[str, ...]] = {}
    for r in frame.itertuples(index=False):
        count = "" if pd.isna(r.unexpected_count) else f" ({int(r.unexpected_count):,} rows)"
        failed[(r.run_id, r.dataset)] = (*failed.get((r.run_id, r.dataset), ()), f"{r.expectation}{count}")
    return failed


def _quarantine_counts(hub: Hub) -> dict[str, int]:
    """Rows waiting in quarantine per hub table (released rows no longer wait)."""
    if not hub.table_exists(QUARANTINE):
        return {}
    released = hub.scalar(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'quality' AND table_name = 'quarantine' AND column_name = 'released_at'"
    )
    waiting = " WHERE released_at IS NULL" if released else ""
    frame = hub.read_frame(f"SELECT dataset, count(*) AS n FROM {QUARANTINE}{waiting} GROUP BY dataset")
    return {str(r.dataset): int(r.n) for r in frame.itertuples(index=False)}


def _last_load(hub: Hub, table: str) -> datetime | None:
    """When a load last committed rows for `table` (from ops.batches), or None."""
    if not hub.table_exists("ops.batches"):
        return None
    pattern = '%"' + table.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
    value = hub.scalar(
        "SELECT max(committed_at) FROM ops.batches WHERE CAST(tables AS VARCHAR) LIKE ? ESCAPE '\\'", [pattern]
    )
    return None if value is None or pd.isna(value) else _utc(value)


def _utc(value: datetime | pd.Timestamp) -> datetime:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)).to_pydatetime()


# --- rendering --------------------------------------------------------------------------

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; --accent: #0969da; --warn: #9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; color: #d0d7de; font-size: 13px; }
header a { color: #9ecbff; }
main { padding: 20px 28px 40px; max-width: 1320px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 0 0 20px;
          overflow-x: auto; }
h2 { font-size: 16px; margin: 0 0 12px; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; margin-bottom: 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 18px; min-width: 170px; }
.card b { display: block; font-size: 24px; }
.card span { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.charts { display: flex; gap: 20px; flex-wrap: wrap; }
figure { margin: 0; flex: 1 1 460px; min-width: 0; }
svg.chart { width: 100%; height: auto; max-width: 720px; display: block; }
figcaption { font-weight: 600; margin-bottom: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.passed { color: var(--ok); }
.failed { color: var(--bad); }
.unvalidated { color: var(--warn); }
ul.failures { margin: 2px 0 0; padding-left: 18px; color: var(--bad); font-size: 12px; }
code { font-size: 12px; }
a { color: var(--accent); }
.muted { color: var(--muted); }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
"""

CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 600, 200, 44, 12, 12, 28
SPARK_W, SPARK_H = 120, 26


def render_html(summary: QualitySummary) -> str:
    """The whole page as one HTML5 document."""
    failing = sum(1 for d in summary.datasets if d.latest is not None and not d.latest.success)
    waiting = sum(d.quarantined for d in summary.datasets)
    last_run = summary.runs[-1] if summary.runs else None
    docs_link = f'<a href="{DATA_DOCS_INDEX}">Great Expectations Data Docs</a>'
    cards = [
        (str(len(summary.datasets)), "datasets"),
        (str(failing), "failing now"),
        (f"{waiting:,}", "rows in quarantine"),
        (f"{last_run.pass_rate:.1%}" if last_run else "n/a", "pass rate, last run"),
    ]
    body = [
        "<header>",
        "<h1>Data-quality report</h1>",
        f"<p>Generated {_e(_stamp(summary.generated_at))} from <code>{_e(summary.hub)}</code> &middot; {docs_link}</p>",
        "</header>",
        "<main>",
        '<div class="cards">',
        *(f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>' for value, label in cards),
        "</div>",
        '<section id="trends"><h2>Last runs</h2><div class="charts">',
        _figure("pass-rate-chart", f"Pass rate of expectations, last {RECENT_RUNS} runs", _pass_rate_chart(summary)),
        _figure("quarantine-chart", f"Rows quarantined, last {RECENT_RUNS} runs", _quarantine_chart(summary)),
        "</div></section>",
        _datasets_table(summary),
        _validations_table(summary),
        "</main>",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>Data-quality report</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _datasets_table(summary: QualitySummary) -> str:
    if not summary.datasets:
        empty = '<p class="muted">No validation runs yet: run a sync.</p>'
        return f'<section id="datasets"><h2>Datasets</h2>{empty}</section>'
    head = (
        "<thead><tr><th>dataset and table</th><th>latest status</th>"
        f'<th>pass rate, last {RECENT_RUNS} runs</th><th class="num">quarantined</th><th>last load</th>'
        "<th>last validated</th><th>Data Docs</th></tr></thead>"
    )
    rows = []
    for d in summary.datasets:
        if d.latest is None:
            status, validated, docs = '<span class="status unvalidated">not validated</span>', "", ""
        else:
            v = d.latest
            label = "passed" if v.success else "failed"
            counts = f'<span class="muted">{v.passed}/{v.expectations}</span>'
            status = f'<span class="nowrap"><span class="status {label}">{label}</span> {counts}</span>'
            if d.failed_expectations:
                items = "".join(f"<li>{_e(f)}</li>" for f in d.failed_expectations)
                status += f'<ul class="failures">{items}</ul>'
            validated, docs = _when(summary.generated_at, v.validated_at), _docs_link(v)
        loaded = (
            _when(summary.generated_at, d.last_loaded_at) if d.last_loaded_at else '<span class="muted">never</span>'
        )
        rows.append(
            f'<tr data-dataset="{_e(d.dataset)}"><td><b>{_e(d.dataset)}</b><br><code>{_e(d.table_name)}</code></td>'
            f"<td>{status}</td><td>{_sparkline(d.pass_rates)}</td>"
            f'<td class="num">{d.quarantined:,}</td><td>{loaded}</td><td>{validated}</td><td>{docs}</td></tr>'
        )
    return f'<section id="datasets"><h2>Datasets</h2><table>{head}<tbody>{"".join(rows)}</tbody></table></section>'


def _validations_table(summary: QualitySummary) -> str:
    if not summary.validations:
        return ""
    rows = "".join(
        f"<tr><td>{_e(_stamp(v.validated_at))}</td><td><code>{_e(v.run_id[:8])}</code></td><td>{_e(v.dataset)}</td>"
        f'<td class="status {"passed" if v.success else "failed"}">{"passed" if v.success else "failed"}</td>'
        f'<td class="num">{v.passed}/{v.expectations}</td><td>{_docs_link(v)}</td></tr>'
        for v in summary.validations
    )
    head = (
        '<thead><tr><th>validated</th><th>run</th><th>dataset</th><th>status</th><th class="num">expectations</th>'
        "<th>Data Docs</th></tr></thead>"
    )
    return f'<section id="validations"><h2>Recent validations</h2><table>{head}<tbody>{rows}</tbody></table></section>'


def _docs_link(v: Validation) -> str:
    if not v.data_docs_path:
        return '<span class="muted">none</span>'
    return f'<a href="{_e(v.data_docs_path)}">validation</a>'


def _figure(element_id: str, caption: str, svg: str) -> str:
    return f'<figure id="{element_id}"><figcaption>{_e(caption)}</figcaption>{svg}</figure>'


def _pass_rate_chart(summary: QualitySummary) -> str:
    runs = summary.runs
    if not runs:
        return _empty_chart()
    xs = _xs(len(runs))
    bottom = _rate_floor([r.pass_rate for r in runs])
    ys = [_y(r.pass_rate, 1.0, bottom) for r in runs]
    line = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{"#1a7f37" if r.passed == r.expectations else "#cf222e"}">'
        f"<title>{_e(_stamp(r.validated_at))} run {_e(r.run_id[:8])}: {r.pass_rate:.1%} "
        f"({r.passed}/{r.expectations})</title></circle>"
        for x, y, r in zip(xs, ys, runs, strict=True)
    )
    grid = _grid([(v, f"{v:.0%}") for v in (bottom, (bottom + 1) / 2, 1.0)], 1.0, bottom)
    return _svg(f'{grid}<path class="series" d="{line}" fill="none" stroke="#0969da" stroke-width="2"/>{dots}')


def _quarantine_chart(summary: QualitySummary) -> str:
    runs = summary.runs
    if not runs:
        return _empty_chart()
    top = _nice_max(max(r.quarantined for r in runs))
    xs = _xs(len(runs))
    width = max(4.0, min(28.0, (CHART_W - PAD_L - PAD_R) / len(runs) * 0.6))
    bars = "".join(
        f'<rect class="bar" x="{x - width / 2:.1f}" y="{_y(r.quarantined, top):.1f}" width="{width:.1f}" '
        f'height="{CHART_H - PAD_B - _y(r.quarantined, top):.1f}" fill="#bf8700">'
        f"<title>{_e(_stamp(r.validated_at))} run {_e(r.run_id[:8])}: {r.quarantined:,} rows</title></rect>"
        for x, r in zip(xs, runs, strict=True)
    )
    grid = _grid(
        [(value, f"{value:,.0f}" if value == int(value) else f"{value:,.1f}") for value in (0, top / 2, top)], top
    )
    return _svg(grid + bars)


def _sparkline(rates: Sequence[float]) -> str:
    if not rates:
        return '<span class="muted">none</span>'
    step = (SPARK_W - 6) / max(len(rates) - 1, 1)
    bottom = _rate_floor(rates)
    points = [(3 + i * step, 3 + (1 - rate) / (1 - bottom) * (SPARK_H - 6)) for i, rate in enumerate(rates)]
    if len(points) == 1:
        points.append((SPARK_W - 3, points[0][1]))
    line = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
    last_x, last_y = points[-1]
    colour = "#1a7f37" if rates[-1] == 1 else "#cf222e"
    summary = ", ".join(f"{rate:.0%}" for rate in rates)
    return (
        f'<svg class="sparkline" width="{SPARK_W}" height="{SPARK_H}" viewBox="0 0 {SPARK_W} {SPARK_H}" role="img">'
        f"<title>pass rate per run, oldest first (axis {bottom:.0%} to 100%): {_e(summary)}</title>"
        f'<path d="{line}" fill="none" stroke="#57606a" stroke-width="1.5"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" fill="{colour}"/></svg>'
    )


def _svg(content: str) -> str:
    return f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" role="img">{content}</svg>'


def _empty_chart() -> str:
    return _svg(f'<text x="{CHART_W / 2}" y="{CHART_H / 2}" text-anchor="middle">no runs yet</text>')


def _grid(ticks: Sequence[tuple[float, str]], top: float, bottom: float = 0.0) -> str:
    lines = "".join(
        f'<path d="M{PAD_L},{_y(value, top, bottom):.1f} H{CHART_W - PAD_R}" stroke="#d0d7de" stroke-width="1"/>'
        f'<text x="{PAD_L - 6}" y="{_y(value, top, bottom) + 4:.1f}" text-anchor="end">{_e(label)}</text>'
        for value, label in ticks
    )
    return (
        lines
        + f'<text x="{PAD_L}" y="{CHART_H - 8}">older</text>'
        + (f'<text x="{CHART_W - PAD_R}" y="{CHART_H - 8}" text-anchor="end">latest</text>')
    )


def _xs(n: int) -> list[float]:
    inner = CHART_W - PAD_L - PAD_R
    step = inner / n
    return [PAD_L + step * (i + 0.5) for i in range(n)]


def _y(value: float, top: float, bottom: float = 0.0) -> float:
    inner = CHART_H - PAD_T - PAD_B
    return PAD_T + inner * (1 - ((value - bottom) / (top - bottom) if top > bottom else 0))


def _rate_floor(rates: Sequence[float]) -> float:
    """The bottom of a pass-rate axis: 0%, or a round 10% step below the lowest rate when all are above 50%,
    so that a drop from 100% to 99% shows."""
    low = min(rates, default=1.0)
    return 0.0 if low < 0.5 else min(0.9, math.floor(low * 10) / 10)


def _nice_max(value: int) -> float:
    """A round axis top at or above `value` (1, 2 or 5 times a power of ten); 1 for an empty series."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _when(now: datetime, then: datetime) -> str:
    """How long ago, with the exact time as a tooltip."""
    return f'<span class="nowrap" title="{_e(_stamp(then))}">{_e(_age(now, then))}</span>'


def _age(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} days ago"


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- writing ----------------------------------------------------------------------------


def write_report(hub: Hub, directory: Path | None = None) -> tuple[Path, QualitySummary]:
    """Build the page from the hub into `directory` (default: the quality dir); replaced whole, never half-written.

    The Data Docs index is rebuilt first, so it lists every validation the page links to; it keeps each
    suite's newest `QUALITY_DOCS_KEEP` validations, and one whose page is gone is shown without a link.
    """
    directory = directory or quality_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if gx_dir().exists():
        build_data_docs_index()
    summary = read_summary(hub, pages_in=directory)
    path = directory / "index.html"
    partial = directory / ".index.html.partial"
    partial.write_text(render_html(summary), encoding="utf-8")
    partial.replace(path)
    return path, summary


@dg.asset(
    key=["quality", "report"],
    group_name="quality",
    pool=HUB_POOL,
    kinds={"html"},
    description="The data-quality report page, <QUALITY_DIR>/index.html, rebuilt from the hub's quality tables.",
)
def quality_report(context: dg.AssetExecutionContext, hub: HubResource) -> dg.MaterializeResult:
    path, summary = write_report(hub.backend)
    failing = [d.dataset for d in summary.datasets if d.latest is not None and not d.latest.success]
    context.log.info(f"quality report: {path.resolve()} ({len(summary.datasets)} datasets, {len(failing)} failing)")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path.resolve())),
            "datasets": dg.MetadataValue.int(len(summary.datasets)),
            "datasets_failing": dg.MetadataValue.int(len(failing)),
            "rows_in_quarantine": dg.MetadataValue.int(sum(d.quarantined for d in summary.datasets)),
        }
    )


def main() -> int:
    """`python -m quality.report`: rebuild the report from the hub in HUB_URL and print where it is.

    A setting it cannot use (HUB_URL, QUALITY_DOCS_KEEP) is one line on stderr and exit status 2.
    """
    url = os.environ.get("HUB_URL") or HubResource().url
    try:
        path, summary = write_report(HubResource(url=url).backend)
    except (HubError, ValueError) as exc:
        print(f"quality report not rebuilt: {exc}", file=sys.stderr)
        return 2
    print(f"Data-quality report ({len(summary.datasets)} datasets): {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
