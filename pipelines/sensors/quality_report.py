"""Rebuild the data-quality report after every run that validated something, whether it succeeded or failed.

The report is the asset `quality/report`. It is not part of the sync jobs: a blocking check that fails
stops everything downstream of it, and a failed run is exactly when the report matters. So two run-status
sensors (one per outcome) request `quality_report_job` once per finished run that evaluated at least one
asset check (run key: that run's id). Runs that checked nothing (the report's own, message consumers that
only record events) leave the report as it is.
"""

import dagster as dg

from quality.report import quality_report

quality_report_job = dg.define_asset_job(
    "quality_report_job",
    selection=dg.AssetSelection.assets(quality_report),
    description="Rebuild the data-quality report page (<QUALITY_DIR>/index.html) from the hub.",
)


def _report_after(status: dg.DagsterRunStatus, name: str) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name=name,
        run_status=status,
        request_job=quality_report_job,
        monitor_all_code_locations=False,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Rebuilds the data-quality report after each {status.value} run that evaluated asset checks.",
    )
    def _sensor(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        checked = context.instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1
        ).records
        if not checked:
            return dg.SkipReason(f"run {run.run_id} evaluated no asset check")
        return dg.RunRequest(run_key=run.run_id, tags={"quality_report_after": run.run_id})

    return _sensor


quality_report_sensors = [
    _report_after(dg.DagsterRunStatus.SUCCESS, "quality_report_after_success"),
    _report_after(dg.DagsterRunStatus.FAILURE, "quality_report_after_failure"),
]
