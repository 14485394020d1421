"""Run-failure sensor: every failed run becomes a row in ops.alerts, and a webhook post if configured."""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
from dagster_shared.error import SerializableErrorInfo

from resources.alerts import AlertWebhookResource
from resources.hub import HubResource, TableSpec

ALERTS = TableSpec(
    "ops.alerts",
    (
        ("alert_id", "text"),
        ("run_id", "text"),
        ("job_name", "text"),
        ("step_key", "text"),
        ("asset_key", "text"),
        ("error_class", "text"),
        ("message", "text"),
        ("occurred_at", "timestamp"),
    ),
    ("alert_id",),
    description="One row per failed step of a failed run (or one per run when no step failed).",
)


def build_failure_alert_sensor(assets: Sequence[dg.AssetsDefinition]) -> dg.SensorDefinition:
    """A run-failure sensor that names the failed asset; `assets` maps step keys to asset keys."""
    asset_by_step = {
        a.node_def.name: ", ".join(sorted(k.to_user_string() for k in a.keys)) for a in assets if a.is_executable
    }

    @dg.run_failure_sensor(
        name="failure_alerts", monitor_all_code_locations=False, default_status=dg.DefaultSensorStatus.RUNNING
    )
    def failure_alerts(context: dg.RunFailureSensorContext, hub: HubResource, alert_webhook: AlertWebhookResource):
        run = context.dagster_run
        stats = context.instance.get_run_stats(run.run_id)
        occurred_at = datetime.fromtimestamp(stats.end_time, UTC) if stats.end_time else datetime.now(UTC)
        failures = context.get_step_failure_events() or [context.failure_event]
        rows = []
        for event in failures:
            error = _root_cause(event.event_specific_data.error if event.event_specific_data else None)
            step_key = event.step_key
            rows.append(
                {
                    "alert_id": f"{run.run_id}:{step_key or 'run'}",
                    "run_id": run.run_id,
                    "job_name": run.job_name,
                    "step_key": step_key,
                    "asset_key": asset_by_step.get(step_key or ""),
                    "error_class": error.cls_name if error else None,
                    "message": (error.message if error else event.message or "")[:2000],
                    "occurred_at": occurred_at,
                }
            )
        with hub.load(ALERTS.name) as load:
            load.stage(ALERTS).append(ALERTS.to_arrow({c: [r[c] for r in rows] for c in ALERTS.column_names}))
        for row in rows:
            alert_webhook.post({**row, "occurred_at": row["occurred_at"].isoformat()})
        context.log.info(f"alerted on run {run.run_id}: {len(rows)} failed step(s)")

    return failure_alerts


def _root_cause(error: SerializableErrorInfo | None) -> SerializableErrorInfo | None:
    """Dagster wraps the user's exception; the alert names the user's."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error
