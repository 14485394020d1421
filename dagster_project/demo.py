"""`make demo`: run the full sync once on the embedded defaults and print what landed."""

from __future__ import annotations

import os
import sys

import dagster as dg
from rich.console import Console
from rich.table import Table

from dagster_project.definitions import defs
from dagster_project.settings import EMBEDDED
from resources.hub import HubResource

LANDED_SCHEMAS = ("raw", "core", "serving", "quality", "ops")


def hub_table_counts(hub: HubResource) -> list[tuple[str, int]]:
    tables = hub.read_frame(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join('?' * len(LANDED_SCHEMAS))}) ORDER BY table_schema, table_name",
        list(LANDED_SCHEMAS),
    )["name"]
    return [(name, int(hub.scalar(f"SELECT count(*) FROM {name}"))) for name in tables]


def main() -> int:
    console = Console()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("full_sync_job")
    console.print(f"[bold]Running {job.name}[/bold] (Dagster instance: {os.environ.get('DAGSTER_HOME', 'ephemeral')})")
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    result = job.execute_in_process(instance=instance, run_config=quiet, raise_on_error=False)

    hub = HubResource(url=os.environ.get("HUB_URL", EMBEDDED["HUB_URL"]))
    rows = Table(title="Hub tables")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for name, count in hub_table_counts(hub):
        rows.add_row(name, f"{count:,}")
    console.print(rows)

    checks = Table(title="Asset checks")
    for column in ("asset", "check", "result", "expectations", "rows", "failed"):
        checks.add_column(column)
    evaluations = result.get_asset_check_evaluations()
    for evaluation in sorted(evaluations, key=lambda e: (e.asset_key.to_user_string(), e.check_name)):
        verdict = "[green]passed[/green]" if evaluation.passed else "[red]FAILED[/red]"
        meta = {key: value.value for key, value in evaluation.metadata.items()}
        failed = [key.removeprefix("failed: ") for key in meta if key.startswith("failed: ")]
        checks.add_row(
            evaluation.asset_key.to_user_string(),
            evaluation.check_name,
            verdict,
            f"{meta.get('expectations_passed', 0)}/{meta.get('expectations_passed', 0) + len(failed)}",
            f"{meta.get('rows_checked', 0):,}",
            "\n".join(failed),
        )
    console.print(checks)

    passed = sum(e.passed for e in evaluations)
    outcome = "succeeded" if result.success else "FAILED"
    console.print(f"run {result.run_id}: {outcome}; checks {passed}/{len(evaluations)} passed")
    return 0 if result.success and passed == len(evaluations) else 1


if __name__ == "__main__":
    sys.exit(main())
