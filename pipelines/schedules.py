"""When batch syncs run. Times are in SYNC_TIMEZONE (default UTC)."""

import os

import dagster as dg

from pipelines.jobs import analytics_daily_job, full_sync_job, incremental_sync_job

SYNC_TIMEZONE = os.environ.get("SYNC_TIMEZONE", "UTC")

nightly_full_sync = dg.ScheduleDefinition(
    name="nightly_full_sync",
    job=full_sync_job,
    cron_schedule="0 2 * * *",
    execution_timezone=SYNC_TIMEZONE,
    tags={"sync": "full"},
    description="Full sync of commerce, payments and warehouse at 02:00.",
)

incremental_sync_every_15_minutes = dg.ScheduleDefinition(
    name="incremental_sync_every_15_minutes",
    job=incremental_sync_job,
    cron_schedule="*/15 * * * *",
    execution_timezone=SYNC_TIMEZONE,
    tags={"sync": "incremental"},
    description="Changes since the committed watermarks, every 15 minutes.",
)

# One run per analytics day, requested shortly after the day closes (partitions are UTC days).
analytics_daily = dg.build_schedule_from_partitioned_job(analytics_daily_job, hour_of_day=1, minute_of_hour=30)

schedules = [nightly_full_sync, incremental_sync_every_15_minutes, analytics_daily]
