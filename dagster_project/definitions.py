"""The code location: assets, checks, jobs and resources, wired once."""

import dagster as dg

from assets.commerce import COMMERCE_CORE_TABLES, commerce_assets
from dagster_project.settings import alert_webhook_resource, commerce_resource, hub_resource
from pipelines.jobs import full_sync_job, incremental_sync_job
from pipelines.schedules import schedules
from pipelines.sensors.failures import build_failure_alert_sensor
from quality.checks import build_suite_checks
from quality.commerce import COMMERCE_SUITES
from resources.hub import HUB_POOL

defs = dg.Definitions(
    assets=commerce_assets,
    asset_checks=build_suite_checks(
        COMMERCE_SUITES, {t.name: dg.AssetKey(t.name.split(".")) for t in COMMERCE_CORE_TABLES}, pool=HUB_POOL
    ),
    jobs=[full_sync_job, incremental_sync_job],
    schedules=schedules,
    sensors=[build_failure_alert_sensor(commerce_assets)],
    resources={"hub": hub_resource(), "commerce": commerce_resource(), "alert_webhook": alert_webhook_resource()},
)
