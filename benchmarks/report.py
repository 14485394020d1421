"""The results as rich tables: scenario figures (median, min-max), then every target met or not."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def _figure(stats: dict[str, Any] | None, unit: str = "") -> tuple[str, str]:
    if not stats:
        return "-", ""
    return f"{_number(stats['median'])}{unit}", f"{_number(stats['min'])} - {_number(stats['max'])}"


def _rows(s: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(scenario, measure, stats, unit) for every figure worth a line."""
    full = s["full_sync"]
    rows = [
        ("1 full sync (DuckDB)", f"{full['records']:,} source records, records/s", full["records_per_s"], ""),
        ("1 full sync (DuckDB)", "end to end", full["seconds"], " s"),
    ]
    for stage, figures in full["stages"].items():
        rows.append(("1 full sync (DuckDB)", f"{stage}: seconds", figures["seconds"], " s"))
    rows += [
        ("1 full sync (DuckDB)", "CPU seconds, every thread", full["cpu_seconds"], " s"),
        ("1 full sync (DuckDB)", "cores busy (CPU / end to end)", full["cores_busy"], ""),
    ]
    raw = s["raw_limit"]
    rows += [
        ("2 raw limit", "records/s (requests + orjson)", raw["records_per_s"], ""),
        ("2 raw limit", "CPU seconds of the loop", raw["cpu_seconds"], " s"),
        ("2 raw limit", "full sync / raw limit", full["vs_raw_limit"], ""),
    ]
    if "cpu_floor_vs_raw_limit" in full:
        floor = "best full sync / raw limit its CPU work allows"
        rows.append(("2 raw limit", floor, full["cpu_floor_vs_raw_limit"], ""))
    if "reason" in s["incremental"]:
        rows.append(("3 incremental", s["incremental"]["reason"], None, ""))
    else:
        for label in ("n", "10n"):
            figures = s["incremental"][label]
            measure = f"{label.upper()} = {figures['products']:,} products, seconds"
            rows.append(("3 incremental", measure, figures["seconds"], " s"))
    cdc = s["cdc_latency"]
    rows.append(("4 CDC apply latency", cdc.get("reason", "10 changes, seconds"), cdc.get("seconds"), " s"))
    if "reason" in s["peak_rss"]:
        rows.append(("5 peak RSS", s["peak_rss"]["reason"], None, ""))
    else:
        for label in ("n", "10n"):
            figures = s["peak_rss"][label]
            measure = f"{label.upper()} = {figures['products']:,} products, MB"
            rows.append(("5 peak RSS", measure, figures["peak_rss_mb"], ""))
    pg = s["postgres"]
    if "full_sync" in pg:
        path = pg["load_path"]
        rows += [
            ("6 Postgres", "full sync records/s", pg["full_sync"]["records_per_s"], ""),
            ("6 Postgres", f"upsert rows/s ({path['rows']:,} rows, COPY + merge)", path["upsert_rows_per_s"], ""),
            ("6 Postgres", "pandas.to_sql rows/s, same rows", path["to_sql_rows_per_s"], ""),
        ]
    else:
        rows.append(("6 Postgres", pg.get("reason", "not available"), None, ""))
    rows.append(("7 validation", "share of end to end", s["validation"]["share"], ""))
    serving = s["simulator_serving"]
    rows.append(("simulator", "records served per CPU second", serving.get("records_per_s"), ""))
    return rows


def print_report(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 140)
    meta, s = results["meta"], results["scenarios"]
    figures = Table(
        title=f"Commerce sync benchmark: {meta['products']:,} products, {meta['repeat']} run(s) each, "
        f"{meta['machine']['cpus']} CPUs"
    )
    for column, justify in (("scenario", "left"), ("measure", "left"), ("median", "right"), ("min - max", "right")):
        figures.add_column(column, justify=justify)
    for scenario, measure, stats, unit in _rows(s):
        figures.add_row(scenario, measure, *_figure(stats, unit))
    console.print(figures)
    verdicts = Table(title="Targets")
    for column in ("target", "measured", "goal", "met"):
        verdicts.add_column(column)
    for t in results["targets"]:
        measured = "-" if t["measured"] is None else _number(t["measured"])
        met = {True: "[green]met[/green]", False: "[red]not met[/red]", None: "[yellow]not measured[/yellow]"}[t["met"]]
        goal = f"{t['op']} {t['target']:,}" + ("" if t["unit"] in ("ratio", "share") else f" {t['unit']}")
        verdicts.add_row(t["name"], measured, goal, met + (f" ({t['note']})" if t["note"] else ""))
    console.print(verdicts)
