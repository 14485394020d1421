"""`make demo`: run the syncs once on the embedded defaults and print what landed."""

import os
import sys

import dagster as dg
from rich.console import Console
from rich.table import Table

from dagster_project.definitions import defs
from dagster_project.settings import EMBEDDED
from dagster_project.stale_runs import release_dead_runs
from quality.paths import report_path
from resources.hub import HubResource

LANDED_SCHEMAS = ("raw", "core", "serving", "quality", "ops")
ANALYTICS_DAYS = 3
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def hub_table_counts(hub: HubResource) -> list[tuple[str, int]]:
    tables = hub.read_frame(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join('?' * len(LANDED_SCHEMAS))}) ORDER BY table_schema, table_name",
        list(LANDED_SCHEMAS),
    )["name"]
    return [(name, int(hub.scalar(f"SELECT count(*) FROM {name}"))) for name in tables]


def run_syncs(console: Console, instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
    """The full sync, the last few closed days of analytics (one run per day), then the serving models again."""
    full = defs.resolve_job_def("full_sync_job")
    console.print(f"[bold]Running {full.name}[/bold]")
    results = [full.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)]
    analytics = defs.resolve_job_def("analytics_daily_job")
    for day in analytics.partitions_def.get_partition_keys()[-ANALYTICS_DAYS:]:
        console.print(f"[bold]Running {analytics.name}[/bold] for {day}")
        results.append(
            analytics.execute_in_process(instance=instance, partition_key=day, run_config=QUIET, raise_on_error=False)
        )
    serving = defs.resolve_job_def("serving_job")
    console.print(f"[bold]Running {serving.name}[/bold] (now with the analytics days)")
    results.append(serving.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False))
    return results


def print_tables(console: Console, hub: HubResource) -> None:
    rows = Table(title="Hub tables")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for name, count in hub_table_counts(hub):
        rows.add_row(name, f"{count:,}")
    console.print(rows)


def print_checks(console: Console, evaluations: list) -> None:
    checks = Table(title="Asset checks")
    for column in ("asset", "check", "result", "expectations", "rows", "failed"):
        checks.add_column(column)
    for evaluation in sorted(evaluations, key=lambda e: (e.asset_key.to_user_string(), e.check_name)):
        meta = {key: value.value for key, value in evaluation.metadata.items()}
        failed = [key.removeprefix("failed: ") for key in meta if key.startswith("failed: ")]
        checks.add_row(
            evaluation.asset_key.to_user_string(),
            evaluation.check_name,
            "[green]passed[/green]" if evaluation.passed else "[red]FAILED[/red]",
            f"{meta.get('expectations_passed', 0)}/{meta.get('expectations_passed', 0) + len(failed)}",
            f"{meta.get('rows_checked', 0):,}",
            "\n".join(failed),
        )
    console.print(checks)


def main() -> int:
    console = Console()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    console.print(f"Dagster instance: {os.environ.get('DAGSTER_HOME', 'ephemeral')}")
    for run_id in release_dead_runs(instance):
        console.print(f"run {run_id} had died holding the hub slot: marked failed, slot freed")
    results = run_syncs(console, instance)
    print_tables(console, HubResource(url=os.environ.get("HUB_URL", EMBEDDED["HUB_URL"])))
    evaluations = [e for result in results for e in result.get_asset_check_evaluations()]
    print_checks(console, evaluations)
    passed = sum(e.passed for e in evaluations)
    succeeded = sum(result.success for result in results)
    console.print(f"runs {succeeded}/{len(results)} succeeded; checks {passed}/{len(evaluations)} passed")
    defs.resolve_job_def("quality_report_job").execute_in_process(instance=instance, run_config=QUIET)
    console.print(f"Data-quality report: {report_path().resolve()}", highlight=False, soft_wrap=True)
    return 0 if succeeded == len(results) and passed == len(evaluations) else 1


if __name__ == "__main__":
    sys.exit(main())
